"""The features file: Parquet, with the feature declarations in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from klantwaarde.features.snapshots import FeatureSet


def write_features(result: FeatureSet, path: Path) -> int:
    """Write the feature set to ``path``; the schema metadata ``klantwaarde.features`` lists the
    features (name, family, window, dtype, description) and ``klantwaarde.skipped`` what the
    source could not give. Returns the number of rows."""
    table = result.table.to_pyarrow()
    declared = [{"name": f.name, "family": f.family, "window_months": f.window_months,
                 "dtype": f.dtype, "riskier": f.riskier, "en": f.en, "nl": f.nl}
                for f in result.features]
    metadata = dict(table.schema.metadata or {})
    metadata[b"klantwaarde.features"] = json.dumps(declared).encode()
    metadata[b"klantwaarde.labels"] = json.dumps(list(result.labels)).encode()
    metadata[b"klantwaarde.skipped"] = json.dumps(list(result.skipped)).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return table.num_rows
