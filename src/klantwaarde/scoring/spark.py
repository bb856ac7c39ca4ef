"""Scoring on Spark (a ``spark:`` source): the customers' feature rows stay in Spark.

- The features are a Spark DataFrame (``engines.spark.dataframe``). Each partition is scored by
  ``Batch.rows`` with ``mapInArrow``: the same function that scores the month in one batch on
  the other engines, on Arrow batches cast to the feature table's types as Ibis reads them. The
  champions, loaded once here, travel to the executors inside ``Batch``; executors never ask the
  model registry.
- The decisions rank within each account manager: ``decisions.decide_managers`` per manager
  (``applyInPandas``), given what spans all managers: whether any customer has an expected saved
  margin, and the managers, checked against lists.yaml's overrides. A manager's customers are one
  group, so the largest group (the unassigned customers, all of them without account managers)
  must fit one executor.
- The reasons of the listed customers come from ``Batch.reasons`` per partition of the features
  joined with the decisions; drift from ``Batch.bin_counts`` per partition, added up here, so
  the PSI equals the one-batch PSI.
- To this process come, per customer, a few numbers and no features: its margins over the
  profitability window, to segment it (the pyramid ranks all customers, as klantwaarde
  profitability on Spark does), the six columns of ``SUMMARY`` and, after the decisions,
  retention and cross_sell (the run's summary, how many reasons).
- Spark writes the month's Parquet copy, a folder of part files, into a staging folder that
  ``store.publish`` swaps in. The scores table's DuckDB file, one machine's file, is not
  written: every reader reads the Parquet copies.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from klantwaarde.decisions import (
    GIVES,
    READS,
    check_overrides,
    decide_managers,
    expected_saved_margin,
    managers_of,
)
from klantwaarde.engines import spark as engine
from klantwaarde.features import FeatureSet
from klantwaarde.models.customer_model import model_frame
from klantwaarde.scoring.champions import check_inputs
from klantwaarde.scoring.score import (
    ROWS,
    SEGMENT,
    SUMMARY,
    Batch,
    Month,
    Step,
    no_one_to_score,
    scoring_steps,
)
from klantwaarde.scoring.store import SCHEMA, publish, staging

_MANAGER = "manager_"  # the account manager as the decisions group customers
_SEGMENTS = pa.schema([*(SCHEMA.field(n) for n in SEGMENT), (_MANAGER, pa.string())])
_DECIDED = pa.schema([SCHEMA.field(n) for n in ("customer_id", *GIVES)])
_LISTED = ("retention", "cross_sell", "next_best_categories")
_REASONS = pa.schema([SCHEMA.field(n) for n in (
    "customer_id", "churn_reasons", "margin_reasons", "upgrade_reasons")])
_COUNTS = pa.schema([("target", pa.string()), ("feature", pa.string()),
                     ("counts", pa.list_(pa.float64()))])


def score_month(fs: FeatureSet, batch: Batch, segments: Callable[[], pd.DataFrame],
                capacity: dict[str, int], step: Step) -> Month:
    """The month as Spark jobs; written by Spark to the scores' Parquet copy."""
    from pyspark.sql import functions as F  # noqa: N812 (pyspark's convention)

    cfg, as_of = batch.cfg, batch.as_of
    types = fs.table.schema().to_pyarrow()
    features = engine.dataframe(fs.table)  # cached by score()
    customers = features.count()
    if not customers:
        raise no_one_to_score(as_of, cfg)
    check_inputs(batch.champions, _frame(types.empty_table(), types, batch), fs.skipped)
    scoring_steps(batch, customers, step)
    rows = features.mapInArrow(
        _each(lambda t: batch.rows(_frame(t, types, batch)), ROWS), _struct(ROWS)).persist()
    overview = rows.select(*SUMMARY).toPandas()
    by_effect = bool(expected_saved_margin(overview, cfg.costs, cfg.labels.horizon_months,
                                           cfg.lists.contact).notna().any())

    step("segmenting by profitability")
    found = segments()
    found[_MANAGER] = managers_of(found.account_manager, cfg.lists.unassigned)
    session = features.sparkSession
    scored = rows.join(session.createDataFrame(found, _struct(_SEGMENTS)), "customer_id", "left") \
        .withColumn(_MANAGER, F.coalesce(_MANAGER, F.lit(cfg.lists.unassigned)))  # no segment

    step("choosing the lists within each manager's capacity")
    check_overrides({r[0] for r in scored.select(_MANAGER).distinct().collect()}, cfg.lists)

    def decide(group: pd.DataFrame) -> pd.DataFrame:
        return decide_managers(group, as_of, cfg.lists, cfg.costs, cfg.labels.horizon_months,
                               capacity, by_effect).assign(customer_id=group.customer_id)[
            _DECIDED.names]

    decisions = scored.select(*(F.col(_MANAGER).alias(c) if c == "account_manager" else c
                                for c in READS)) \
        .groupBy("account_manager").applyInPandas(decide, _struct(_DECIDED))
    decided = scored.join(decisions, "customer_id").persist()

    def explain(table: pa.Table) -> pd.DataFrame:
        frame = _frame(table, types, batch)
        return batch.reasons(frame, table.select(_LISTED).to_pandas()).assign(
            customer_id=frame.customer_id)

    reasons = features.join(decided.select("customer_id", *_LISTED), "customer_id") \
        .mapInArrow(_each(explain, _REASONS), _struct(_REASONS))
    scores = decided.join(reasons, "customer_id").select(
        *(F.col(f.name).cast(t.dataType) for f, t in zip(SCHEMA, _struct(SCHEMA), strict=True)))
    counted = features.mapInArrow(
        _each(lambda t: _counts(batch.bin_counts(_frame(t, types, batch))), _COUNTS),
        _struct(_COUNTS)).toPandas()

    def write() -> Path:
        step(f"writing {customers:,} scores at {as_of} to {cfg.scoring.parquet}")
        try:
            return write_month(scores, cfg.scoring.parquet, as_of)
        finally:
            for frame in (rows, decided):
                frame.unpersist()

    return Month(customers, overview, decided.select("retention", "cross_sell").toPandas(),
                 _added(counted), write)


def write_month(scores, parquet: Path, as_of: dt.date) -> Path:  # noqa: ANN001 (pyspark)
    """Write the Spark DataFrame ``scores`` (SCHEMA's columns) as the month ``as_of`` of the
    Parquet copies under ``parquet``: into a staging folder, then published; a failed write
    leaves the month as it was. The month's path."""
    folder = staging(parquet, as_of)
    try:
        # a file: path for Hadoop, which reads it unescaped ("as_of=", not "as_of%3D")
        scores.write.mode("overwrite").parquet(f"file://{folder.resolve()}")
        return publish(parquet, as_of, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # a failed write's part files


def _frame(table: pa.Table, types: pa.Schema, batch: Batch) -> pd.DataFrame:
    """``model_input`` of the feature columns of ``table`` (Spark's types cast to Ibis')."""
    return model_frame(table.select(types.names).cast(types), batch.declared)


def _each(work: Callable[[pa.Table], pd.DataFrame], schema: pa.Schema
          ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """``work`` on each Arrow batch of a partition, its result in ``schema``."""
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for found in batches:
            if found.num_rows:
                result = work(pa.Table.from_batches([found]))
                yield from pa.Table.from_pandas(result[schema.names], schema=schema,
                                                preserve_index=False).to_batches()
    return run


def _counts(counts: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame([(t, f, c.tolist()) for (t, f), c in counts.items()],
                        columns=_COUNTS.names)


def _added(counted: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """The counts of all partitions, added up per model and feature."""
    return {key: np.sum(np.stack(group.counts.map(np.asarray).to_list()), axis=0)
            for key, group in counted.groupby(["target", "feature"], sort=False)}


def _struct(schema: pa.Schema):  # noqa: ANN202 (pyspark is optional)
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)
