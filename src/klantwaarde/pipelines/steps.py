"""The steps a pipeline can name: each calls the library function of the command of the same
name and says in one line what it did. The heavy modules are imported when a step runs, so that
reading a pipeline file stays quick.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from klantwaarde.config import Config
from klantwaarde.periods import months_before
from klantwaarde.pipelines.spec import (
    EvaluateStep,
    ListsStep,
    PromoteStep,
    ScoreStep,
    StepSpec,
    TrainStep,
)

if TYPE_CHECKING:
    from klantwaarde.sources import Source

Step = Callable[[str], None]


@dataclass(frozen=True)
class Context:
    """What a step of one run gets: the month, the configuration, the validated source (when a
    step of the pipeline reads one) and the results of the steps before it, by name."""

    as_of: dt.date
    cfg: Config
    source: Source | None
    results: dict[str, Any]
    step: Step


@dataclass(frozen=True)
class Outcome:
    """What a step did, in one line, and its result for the steps after it."""

    summary: str
    result: Any = None
    skipped: bool = False
    notices: tuple[str, ...] = ()


def score(spec: ScoreStep, ctx: Context) -> Outcome:
    from klantwaarde.scoring.score import score as run_scoring

    assert ctx.source is not None  # a step that reads a source gets one
    result = run_scoring(ctx.source, ctx.as_of, ctx.cfg, ctx.step)
    versions = ", ".join(f"{t} v{v}" for t, v in result.versions.items())
    return Outcome(f"{result.customers:,} customers scored ({versions}); "
                   f"{len(result.drifted)} feature(s) drifted", result, notices=tuple(
                       result.notices))


def lists(spec: ListsStep, ctx: Context) -> Outcome:
    from klantwaarde.lists import build_lists, write_lists
    from klantwaarde.scoring.store import read_scores

    ctx.step(f"building the lists of {ctx.as_of}")
    scores = read_scores(ctx.cfg.scoring.parquet, ctx.as_of)
    result = write_lists(build_lists(scores, ctx.as_of, ctx.cfg), spec.folder(ctx.as_of),
                         replace=True)
    counts = [sum(getattr(m, k) for m in result.managers)
              for k in ("at_risk", "win_back", "cross_sell", "loss_accounts")]
    return Outcome(f"{counts[0]:,} at risk, {counts[1]:,} win-back, {counts[2]:,} cross-sell, "
                   f"{counts[3]:,} loss accounts for {len(result.managers)} managers in "
                   f"{result.folder}", result)


def evaluate(spec: EvaluateStep, ctx: Context) -> Outcome:
    from klantwaarde.scoring.evaluate import NoScoresError
    from klantwaarde.scoring.evaluate import evaluate as run_evaluation

    assert ctx.source is not None
    try:
        result = run_evaluation(ctx.source, ctx.as_of, ctx.cfg, ctx.step)
    except NoScoresError:
        then = months_before(ctx.as_of, ctx.cfg.labels.horizon_months)
        return Outcome(f"no scores of {then} to evaluate yet", skipped=True)
    m = result.metrics
    kind = "in-sample, not out-of-time" if result.in_sample else "out-of-time"
    return Outcome(f"{result.customers:,} customers scored at {result.scored_at} ({kind}): churn "
                   f"ROC-AUC {m['churn_roc_auc']:.3f}, retention {m['retention_rate']:.1%}", result,
                   notices=tuple(result.notices))


def train(spec: TrainStep, ctx: Context) -> Outcome:
    from klantwaarde.training.train import train as run_training

    assert ctx.source is not None
    result = run_training(ctx.source, ctx.as_of, ctx.cfg, ctx.step)
    challengers = ", ".join(f"{t} v{v.version}" for t, v in result.challengers.items())
    winners = ", ".join(t for t, v in result.verdicts.items() if v.wins) or "none"
    return Outcome(f"challengers {challengers}; winners by the promotion rule: {winners}",
                   result, notices=tuple(result.notices))


def promote(spec: PromoteStep, ctx: Context) -> Outcome:
    from klantwaarde.models import registry
    from klantwaarde.training.train import promote_winners

    registry.connect(ctx.cfg.models)
    promoted = promote_winners(ctx.results["train"])
    if not promoted:
        return Outcome("no challenger wins by the promotion rule; the champions stay")
    return Outcome("champion now " + ", ".join(f"{t} v{v.version}" for t, v in promoted.items()),
                   promoted)


RUNNERS: dict[str, Callable[[Any, Context], Outcome]] = {
    "score": score, "lists": lists, "evaluate": evaluate, "train": train, "promote": promote}


def run_step(spec: StepSpec, ctx: Context) -> Outcome:
    """Run one step of a pipeline."""
    return RUNNERS[spec.step](spec, ctx)
