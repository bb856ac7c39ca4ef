"""Running a pipeline for a month, and catching up the months its schedule has due.

Per pipeline one folder (``runs:``) holds a lock and a record per completed month,
``<as_of>.json``, written when the last step has succeeded: a month without a record is not
done. The lock (``pipeline.lock``) is held for a whole run or catch-up; a second run or scheduler
of the same pipeline does not wait for it but says so and runs nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from filelock import FileLock, Timeout

from klantwaarde.config import Config, load_config
from klantwaarde.errors import InputError
from klantwaarde.outputs import Kind, Place, check_places, mlflow_store, scores_store
from klantwaarde.pipelines.fires import as_of_of, fire_days, latest_fire
from klantwaarde.pipelines.spec import Pipeline
from klantwaarde.pipelines.steps import Context, Step, run_step

if TYPE_CHECKING:
    from klantwaarde.sources import Source


class PipelineBusy(InputError):
    """Another run or scheduler holds the pipeline's lock."""


@dataclass(frozen=True)
class StepRecord:
    name: str
    status: Literal["ok", "skipped"]
    seconds: float
    summary: str
    notices: tuple[str, ...]


@dataclass(frozen=True)
class Record:
    """A completed month of a pipeline, as written to ``<runs>/<as_of>.json``."""

    pipeline: str
    file: str
    as_of: dt.date
    started: dt.datetime
    finished: dt.datetime
    steps: tuple[StepRecord, ...]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1,
                          default=lambda v: v.isoformat()) + "\n"


def record_path(pipeline: Pipeline, as_of: dt.date) -> Path:
    return pipeline.spec.runs / f"{as_of.isoformat()}.json"


def completed(pipeline: Pipeline) -> list[dt.date]:
    """The months that have a record, oldest first."""
    found = []
    for path in pipeline.spec.runs.glob("*.json"):
        try:
            found.append(dt.date.fromisoformat(path.stem))
        except ValueError:
            continue
    return sorted(found)


def due(pipeline: Pipeline, now: dt.datetime) -> list[dt.date]:
    """The as_of of every fire up to ``now`` (an aware time) that has no record, oldest first:
    from ``schedule.start`` on; without it, those after the newest record; on a first start
    without it, only the latest fire's."""
    schedule = pipeline.schedule()
    done = completed(pipeline)
    if schedule.start is None and not done:
        fire = latest_fire(schedule, now)
        return [] if fire is None else [as_of_of(fire)]
    first = schedule.start or done[-1] + dt.timedelta(days=1)
    return [d for d in (as_of_of(f) for f in fire_days(schedule, first + dt.timedelta(days=1),
                                                       now)) if d not in done]


@contextmanager
def locked(pipeline: Pipeline) -> Iterator[None]:
    """Hold the pipeline's lock; PipelineBusy when another process holds it."""
    pipeline.spec.runs.mkdir(parents=True, exist_ok=True)
    lock = FileLock(pipeline.lock_file)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise PipelineBusy(f"another klantwaarde run/schedule holds {pipeline.lock_file} — "
                           "skipped") from None
    try:
        yield
    finally:
        lock.release()


def run_pipeline(pipeline: Pipeline, as_of: dt.date, step: Step = lambda _: None) -> Record:
    """Run every step of ``pipeline`` for ``as_of`` under its lock and record the month."""
    cfg = load_config(pipeline.spec.config)
    check_places(places(pipeline, as_of, cfg), "run", pipeline.spec.source)
    with locked(pipeline):
        return _run(pipeline, as_of, cfg, _source(pipeline, cfg, step), step)


def catch_up(pipeline: Pipeline, now: dt.datetime, step: Step = lambda _: None,
             done: Callable[[Record], None] = lambda _: None) -> list[Record]:
    """Run the months ``due`` at ``now``, oldest first, under the pipeline's lock; ``done`` is
    told of each month as it is recorded. A failing month stops the catch-up (it stays due)."""
    cfg = load_config(pipeline.spec.config)
    with locked(pipeline):
        months = due(pipeline, now)
        for as_of in months:
            check_places(places(pipeline, as_of, cfg), "schedule", pipeline.spec.source)
        source = _source(pipeline, cfg, step) if months else None
        records = []
        for as_of in months:
            records.append(_run(pipeline, as_of, cfg, source, step))
            done(records[-1])
    return records


def places(pipeline: Pipeline, as_of: dt.date, cfg: Config) -> list[Place]:
    """Every place the steps of ``pipeline`` write for the month ``as_of``."""
    from klantwaarde.lists import INDEX

    found = [Place(pipeline.spec.runs, f"runs of {pipeline.file}", Kind.FOLDER)]
    for spec in pipeline.spec.steps:
        if spec.step == "lists":
            found.append(Place(spec.folder(as_of), f"lists.out of {pipeline.file}",
                               Kind.NEW_FOLDER, replaces=INDEX, owner="lists"))
        else:
            found += mlflow_store(cfg.models.store)
        if spec.step == "score":
            found += scores_store(cfg.scoring.store, cfg.scoring.parquet)
    return list(dict.fromkeys(found))


def _source(pipeline: Pipeline, cfg: Config, step: Step) -> Source | None:
    """The source, opened and checked against the data contract, if a step reads it."""
    if not any(s.reads_source for s in pipeline.spec.steps):
        return None
    from klantwaarde.validation import open_valid_source

    assert pipeline.spec.source is not None  # load_pipeline checked it
    return open_valid_source(pipeline.spec.source, cfg, step)


def _run(pipeline: Pipeline, as_of: dt.date, cfg: Config, source: Source | None, step: Step
         ) -> Record:
    started = dt.datetime.now(dt.UTC)  # wall-clock-ok: the record's timestamps
    results: dict[str, Any] = {}
    steps = []
    if source is not None:
        from klantwaarde.features import check_covers

        for spec in pipeline.spec.steps:
            if spec.reads_source:
                check_covers(source, as_of, spec.step)
    for spec in pipeline.spec.steps:
        prefix = f"{pipeline.name} {as_of} {spec.step}"
        step(prefix)
        ctx = Context(as_of, cfg, source, results, lambda text, p=prefix: step(f"{p}: {text}"))
        clock = time.perf_counter()
        outcome = run_step(spec, ctx)
        results[spec.step] = outcome.result
        steps.append(StepRecord(spec.step, "skipped" if outcome.skipped else "ok",
                                round(time.perf_counter() - clock, 1), outcome.summary,
                                outcome.notices))
    record = Record(pipeline.name, str(pipeline.file), as_of, started,
                    dt.datetime.now(dt.UTC), tuple(steps))  # wall-clock-ok: timestamp
    _write(record_path(pipeline, as_of), record.to_json())
    return record


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)
