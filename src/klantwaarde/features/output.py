"""The features file: Parquet, with the feature declarations in its metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from klantwaarde.features.snapshots import FeatureSet

ROW_GROUP = 65_536  # rows per Parquet row group


def write_features(sets: Iterable[FeatureSet], path: Path) -> tuple[FeatureSet | None, int]:
    """Write feature sets (one per snapshot, the oldest first: ``snapshot_sets``) to ``path``,
    each written batch by batch as the engine yields it, so that memory does not grow with the
    number of snapshots; the schema metadata ``klantwaarde.features`` lists the features (name,
    family, window, dtype, descriptions), ``klantwaarde.labels`` the labels and
    ``klantwaarde.skipped`` what the source could not give. Returns the first set (None
    without any) and the number of rows written."""
    writer: pq.ParquetWriter | None = None
    first: FeatureSet | None = None
    rows = 0
    try:
        for fs in sets:
            if writer is None:
                first = fs
                schema = fs.table.schema().to_pyarrow().with_metadata(_metadata(fs))
                writer = pq.ParquetWriter(path, schema)
            with fs.table.to_pyarrow_batches() as batches:
                for table in row_groups(batches, schema):
                    writer.write_table(table, row_group_size=ROW_GROUP)
                    rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return first, rows


def _metadata(fs: FeatureSet) -> dict[bytes, bytes]:
    declared = [{"name": f.name, "family": f.family, "window_months": f.window_months,
                 "dtype": f.dtype, "riskier": f.riskier, "en": f.en, "nl": f.nl}
                for f in fs.features]
    return {b"klantwaarde.features": json.dumps(declared).encode(),
            b"klantwaarde.labels": json.dumps(list(fs.labels)).encode(),
            b"klantwaarde.skipped": json.dumps(list(fs.skipped)).encode()}


def row_groups(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """The engine's batches (whose sizes vary with its threads) regrouped into tables of
    ROW_GROUP rows, the last one shorter: the same rows always make the same file."""
    pending: list[pa.Table] = []
    held = 0
    for batch in batches:  # the engine's batches keep its own types (sums as decimals)
        pending.append(pa.Table.from_batches([batch]).cast(schema))
        held += batch.num_rows
        while held >= ROW_GROUP:
            table = pa.concat_tables(pending)
            yield table.slice(0, ROW_GROUP)
            pending, held = [table.slice(ROW_GROUP)], held - ROW_GROUP
    if held:
        yield pa.concat_tables(pending)
