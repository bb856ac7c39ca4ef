"""The feature pipeline on a simulated base: agreement with the profitability module, the
multi-snapshot path against single snapshots, the declarations, and `klantwaarde features`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli, snapshot
from klantwaarde.config import load_config
from klantwaarde.features import FEATURES, features_at, training_set
from klantwaarde.features.output import ROW_GROUP, row_groups
from klantwaarde.periods import anchor_of, date_of, period_of
from klantwaarde.profitability.margins import DRIVERS, customer_margins
from klantwaarde.simulation import simulate
from klantwaarde.sources import open_source

CFG = load_config()
AS_OF = dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("features") / "source"
    simulate(1500, 24, 5, folder, CFG, start=dt.date(2023, 1, 1))
    return folder


def _frame(fs) -> pd.DataFrame:  # noqa: ANN001
    return fs.table.to_pyarrow().to_pandas().set_index(["as_of", "customer_id"]).sort_index()


def _source(folder: Path):  # noqa: ANN202
    return open_source(str(folder), CFG.source)


def test_every_declared_feature_is_computed_on_a_full_source(base: Path) -> None:
    fs = features_at(_source(base), AS_OF, CFG)
    names = [f.name for f in fs.features]
    assert set(f.name for f in FEATURES) <= set(names)
    assert fs.skipped == ()
    frame = fs.table.to_pyarrow().to_pandas()
    assert list(frame.columns) == ["customer_id", "as_of", *names]
    assert frame.customer_id.is_unique and len(frame) > 1000
    assert "gender" not in frame.columns and "account_manager" not in frame.columns
    # every active customer ordered in the last 12 months, and no one after as_of
    assert frame.days_since_last_order.between(0, 366).all()
    assert (frame.orders_12m >= 1).all()


def test_margin_features_equal_the_profitability_module(base: Path) -> None:
    features = _frame(features_at(_source(base), AS_OF, CFG)).loc[pd.Timestamp(AS_OF).date()]
    margins = customer_margins(_source(base), AS_OF, CFG, 12).table.to_pyarrow() \
        .to_pandas().set_index("customer_id").loc[features.index]
    pairs = {"gross_margin_12m": "gross_margin", "cost_to_serve_12m": "cost_to_serve",
             "net_margin_12m": "net_margin", "stale_discount_12m": "stale_discount",
             **{f"cost_{d}_12m": f"cost_{d}" for d in DRIVERS}}
    for feature, column in pairs.items():
        np.testing.assert_allclose(features[feature], margins[column], rtol=1e-9, atol=1e-6,
                                   err_msg=feature)


def test_many_snapshots_at_once_equal_each_snapshot_alone(base: Path) -> None:
    together = _frame(features_at(_source(base), AS_OF, CFG, snapshots=3))
    dates = sorted(set(together.index.get_level_values(0)))
    assert dates == [dt.date(2024, 4, 30), dt.date(2024, 5, 31), AS_OF]
    for day in dates:
        alone = _frame(features_at(_source(base), day, CFG))
        pd.testing.assert_frame_equal(together.loc[[day]], alone, check_exact=False, rtol=1e-9)


def test_training_set_features_and_the_margin_label(base: Path) -> None:
    cutoff = dt.date(2024, 12, 31)
    ts = training_set(_source(base), CFG, cutoff, snapshots=2)
    frame = _frame(ts)
    horizon = CFG.labels.horizon_months
    assert sorted(set(frame.index.get_level_values(0))) == [dt.date(2024, 5, 31), AS_OF]
    assert {"label_churn", "label_future_net_margin", "label_upgrade"} <= set(ts.labels)
    assert any(label.startswith("label_adopt__") for label in ts.labels)
    alone = _frame(features_at(_source(base), AS_OF, CFG))
    pd.testing.assert_frame_equal(frame.loc[[AS_OF], alone.columns], alone, check_exact=False,
                                  rtol=1e-9)
    anchor = anchor_of(AS_OF)
    end = date_of(period_of(AS_OF, anchor) + horizon, anchor)
    future = customer_margins(_source(base), end, CFG, horizon).table.to_pyarrow() \
        .to_pandas().set_index("customer_id").net_margin
    labels = frame.loc[AS_OF].label_future_net_margin
    expected = future.reindex(labels.index).fillna(0.0)
    np.testing.assert_allclose(labels, expected, rtol=1e-9, atol=1e-6)
    churn = frame.loc[AS_OF].label_churn
    assert 0.02 < churn.mean() < 0.6  # both classes present in a sensible mix


def test_command_writes_the_features_with_their_declarations(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "features" / "2024-06.parquet"
    result = run_cli("features", "--source", str(base), "--as-of", "2024-06-30",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "written to" in result.stdout
    table = pq.read_table(out)
    declared = json.loads(table.schema.metadata[b"klantwaarde.features"])
    assert [d["name"] for d in declared] == table.column_names[2:]
    assert all(d["en"] and d["nl"] for d in declared)
    arrow = {"int64": "int64", "float64": "double", "string": "string", "boolean": "bool"}
    assert {d["name"]: arrow[d["dtype"]] for d in declared} == {
        d["name"]: str(table.schema.field(d["name"]).type) for d in declared}
    assert table.num_rows == _frame(features_at(_source(base), AS_OF, CFG)).shape[0]
    before = snapshot(out.parent)
    again = run_cli("features", "--source", str(base), "--as-of", "2024-06-30",
                    "--out", str(out))
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert snapshot(out.parent) == before


def test_the_same_features_make_the_same_file(base: Path, tmp_path: Path) -> None:
    """Two runs over the same source write byte-identical Parquet (DuckDB on all its threads:
    money is summed in whole cents, and the file's row groups do not follow the engine's
    batches)."""
    files = [tmp_path / f"{run}.parquet" for run in ("first", "second")]
    for out in files:
        result = run_cli("features", "--source", str(base), "--as-of", "2024-06-30",
                         "--snapshots", "3", "--out", str(out))
        assert result.returncode == 0, result.stderr
    assert files[0].read_bytes() == files[1].read_bytes()
    written = pq.read_table(files[0]).to_pandas().set_index(["as_of", "customer_id"])
    written.index = written.index.set_levels(pd.to_datetime(written.index.levels[0]).date, level=0)
    together = _frame(features_at(_source(base), AS_OF, CFG, snapshots=3))
    together.index = together.index.set_levels(pd.to_datetime(together.index.levels[0]).date,
                                               level=0)
    pd.testing.assert_frame_equal(written, together, check_dtype=False)


def test_row_groups_do_not_follow_the_engines_batches(tmp_path: Path) -> None:
    table = pa.table({"customer_id": [f"C{i:06d}" for i in range(150_000)],
                      "value": np.arange(150_000, dtype=float) / 7})
    written = []
    for sizes in ((150_000,), (1_000, 70_000, 79_000), (65_536, 65_536, 18_928)):
        bounds = np.cumsum((0, *sizes))
        batches = [b for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
                   for b in table.slice(start, stop - start).to_batches()]
        path = tmp_path / f"{len(written)}.parquet"
        with pq.ParquetWriter(path, table.schema) as writer:
            for group in row_groups(pa.RecordBatchReader.from_batches(table.schema, batches),
                                     table.schema):
                writer.write_table(group, row_group_size=ROW_GROUP)
        written.append(path.read_bytes())
        assert pq.ParquetFile(path).metadata.num_row_groups == 3
    assert written[0] == written[1] == written[2]


def test_invalid_source_or_name_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "bad"
    source.mkdir()
    (source / "orders.csv").write_text("customer_id,order_date,gross_amount\nC1,2024-13-45,10\n")
    out = tmp_path / "out" / "f.parquet"
    result = run_cli("features", "--source", str(source), "--as-of", "2024-06-30",
                     "--out", str(out))
    assert result.returncode == 2 and "order_date" in result.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir())
    named = run_cli("features", "--source", str(source), "--as-of", "2024-06-30",
                    "--out", str(tmp_path / "f.csv"))
    assert named.returncode == 2 and "*.parquet" in named.stderr


def test_too_many_categories_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "wide"
    source.mkdir()
    rows = "".join(f"C{i % 7},2024-0{1 + i % 6}-10,{10 + i},cat{i:02d}\n" for i in range(70))
    (source / "orders.csv").write_text("customer_id,order_date,gross_amount,category\n" + rows)
    result = run_cli("features", "--source", str(source), "--as-of", "2024-06-30",
                     "--out", str(tmp_path / "f.parquet"))
    assert result.returncode == 2
    assert "70 distinct product categories" in result.stderr and "Fix:" in result.stderr
    assert not (tmp_path / "f.parquet").exists()


def test_csv_and_duckdb_sources_give_the_same_features(tmp_path: Path) -> None:
    frames = []
    for fmt in ("csv", "duckdb"):
        folder = tmp_path / fmt
        result = simulate(400, 18, 2, folder, CFG, fmt=fmt, start=dt.date(2023, 1, 1))
        frames.append(_frame(features_at(_source(Path(result.source)), AS_OF, CFG)))
    assert len(frames[0]) > 300
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=False, rtol=1e-9)


def test_an_as_of_before_the_data_is_a_clear_error(base: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    result = run_cli("features", "--source", str(base), "--as-of", "2010-01-31", "--out", str(out))
    assert result.returncode == 2
    assert "no customer has an order line" in result.stderr and "Fix:" in result.stderr
    assert list(tmp_path.iterdir()) == []
