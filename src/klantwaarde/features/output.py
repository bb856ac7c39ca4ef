"""The features file: Parquet, with the feature declarations in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from klantwaarde.features.snapshots import FeatureSet


def write_features(result: FeatureSet, path: Path) -> int:
    """Write the feature set to ``path`` batch by batch, as the engine yields them; the schema
    metadata ``klantwaarde.features`` lists the features (name, family, window, dtype,
    descriptions), ``klantwaarde.labels`` the labels and ``klantwaarde.skipped`` what the source
    could not give. Returns the number of rows."""
    declared = [{"name": f.name, "family": f.family, "window_months": f.window_months,
                 "dtype": f.dtype, "riskier": f.riskier, "en": f.en, "nl": f.nl}
                for f in result.features]
    metadata = {b"klantwaarde.features": json.dumps(declared).encode(),
                b"klantwaarde.labels": json.dumps(list(result.labels)).encode(),
                b"klantwaarde.skipped": json.dumps(list(result.skipped)).encode()}
    rows = 0
    with result.table.to_pyarrow_batches() as batches:
        schema = batches.schema.with_metadata(metadata)
        with pq.ParquetWriter(path, schema) as writer:
            for batch in batches:  # the engine's batches keep its own types (sums as decimals)
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))
                rows += batch.num_rows
    return rows
