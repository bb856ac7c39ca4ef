"""The features file: Parquet, with the feature declarations in its metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from klantwaarde.config import Config
from klantwaarde.features.snapshots import FeatureSet, build
from klantwaarde.periods import period_of

ROW_GROUP = 65_536  # rows per Parquet row group


def write_features(result: FeatureSet, cfg: Config, path: Path) -> int:
    """Write the feature set to ``path`` one snapshot after the other, each built from the set's
    history and written batch by batch as the engine yields it, so that memory does not grow
    with the number of snapshots; the schema
    metadata ``klantwaarde.features`` lists the features (name, family, window, dtype,
    descriptions), ``klantwaarde.labels`` the labels and ``klantwaarde.skipped`` what the source
    could not give. Returns the number of rows."""
    declared = [{"name": f.name, "family": f.family, "window_months": f.window_months,
                 "dtype": f.dtype, "riskier": f.riskier, "en": f.en, "nl": f.nl}
                for f in result.features]
    metadata = {b"klantwaarde.features": json.dumps(declared).encode(),
                b"klantwaarde.labels": json.dumps(list(result.labels)).encode(),
                b"klantwaarde.skipped": json.dumps(list(result.skipped)).encode()}
    schema = result.table.schema().to_pyarrow().with_metadata(metadata)
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for table in row_groups(_snapshot_batches(result, cfg), schema):
            writer.write_table(table, row_group_size=ROW_GROUP)
            rows += table.num_rows
    return rows


def _snapshot_batches(result: FeatureSet, cfg: Config) -> Iterator[pa.RecordBatch]:
    """The batches of every snapshot, the oldest first: one build and query per snapshot."""
    if len(result.as_of) == 1:
        alone = [result]
    else:
        history = result.history
        alone = (build(history, cfg, [period_of(day, history.anchor)], bool(result.labels))
                 for day in sorted(result.as_of))
    for one in alone:
        with one.table.to_pyarrow_batches() as batches:
            yield from batches


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
