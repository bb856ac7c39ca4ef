"""Writing the simulated tables chunk by chunk, as Parquet, CSV or one DuckDB file, into a
staging folder that becomes the output folder at the end (see ``klantwaarde.staging``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from klantwaarde.staging import staged_folder

Format = Literal["parquet", "csv", "duckdb"]
DUCKDB_FILE = "klantwaarde.duckdb"


class TableWriter:
    """Appends chunks to the tables of one output folder; truth tables always go to Parquet."""

    def __init__(self, folder: Path, fmt: Format) -> None:
        self.folder, self.fmt = folder, fmt
        self._parquet: dict[str, pq.ParquetWriter] = {}
        self._csv: dict[str, pacsv.CSVWriter] = {}
        self._duckdb = duckdb.connect(str(folder / DUCKDB_FILE)) if fmt == "duckdb" else None
        (folder / "truth").mkdir()

    def write(self, name: str, table: pa.Table, truth: bool = False) -> None:
        if truth:
            self._to_parquet(self.folder / "truth" / f"{name}.parquet", table)
        elif self.fmt == "parquet":
            self._to_parquet(self.folder / f"{name}.parquet", table)
        elif self.fmt == "csv":
            self._to_csv(self.folder / f"{name}.csv", table)
        else:
            self._to_duckdb(name, table)

    def close(self) -> None:
        for writer in [*self._parquet.values(), *self._csv.values()]:
            writer.close()
        if self._duckdb is not None:
            self._duckdb.close()

    def _to_parquet(self, path: Path, table: pa.Table) -> None:
        if path not in self._parquet:
            self._parquet[path] = pq.ParquetWriter(path, table.schema, compression="zstd")
        self._parquet[path].write_table(table)

    def _to_csv(self, path: Path, table: pa.Table) -> None:
        if path not in self._csv:
            self._csv[path] = pacsv.CSVWriter(path, table.schema)
        self._csv[path].write_table(table)

    def _to_duckdb(self, name: str, table: pa.Table) -> None:
        assert self._duckdb is not None
        self._duckdb.register("chunk", table)
        exists = self._duckdb.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()[0]
        if exists:
            self._duckdb.execute(f'INSERT INTO "{name}" SELECT * FROM chunk')
        else:
            self._duckdb.execute(f'CREATE TABLE "{name}" AS SELECT * FROM chunk')
        self._duckdb.unregister("chunk")


@contextmanager
def output_folder(target: Path, fmt: Format) -> Iterator[TableWriter]:
    """A writer into a staging folder that becomes ``target`` when the block succeeds."""
    with staged_folder(target, "simulate") as folder:
        writer = TableWriter(folder, fmt)
        try:
            yield writer
        finally:
            writer.close()
