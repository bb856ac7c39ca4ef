"""Pipeline files: which steps run in which order, on which source and configuration, on which
schedule. A file is validated whole before anything runs; a mistake is an error that names the
file, the key and the fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, ValidationError, field_validator

from klantwaarde.config import Section, did_you_mean, read_yaml
from klantwaarde.errors import ConfigError, InputError


class ScheduleSpec(Section):
    """When the job fires; each fire's as_of is the day before the fire's date."""

    cron: str
    timezone: str = "UTC"
    start: dt.date | None = None  # the first as_of to catch up from

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone=dt.UTC)
        except ValueError as exc:
            raise ValueError(f"not a cron expression of five fields (minute hour day month "
                             f"day-of-week), such as '0 6 1 * *': {exc}") from None
        weekday = value.split()[4]
        if any(c.isdigit() for c in weekday):
            raise ValueError("write the day of the week as a name (mon, tue, ..., sun; e.g. "
                             "'mon-fri'): APScheduler 3 counts 0 as Monday where cron counts "
                             "it as Sunday")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone; use an IANA name such as Europe/Amsterdam or "
                             "UTC") from None
        return value

    def trigger(self) -> CronTrigger:
        """The cron trigger in the schedule's time zone."""
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))


class ScoreStep(Section):
    """Score every active customer at as_of with the champions (klantwaarde score)."""

    step: Literal["score"]
    reads_source: ClassVar[bool] = True


class ListsStep(Section):
    """The month's lists per account manager (klantwaarde lists) into ``out``; a re-run
    replaces the earlier lists of that month."""

    step: Literal["lists"]
    out: str = "lists/{as_of}"
    reads_source: ClassVar[bool] = False

    @field_validator("out")
    @classmethod
    def _monthly(cls, value: str) -> str:
        try:
            filled = value.format(as_of="")
        except (KeyError, IndexError, ValueError):
            filled = None
        if "{as_of}" not in value or filled is None:
            raise ValueError("must hold {as_of}, and no other braces, so that every month gets "
                             "its own folder: e.g. lists/{as_of}")
        return value

    def folder(self, as_of: dt.date) -> Path:
        """The lists folder of the month ``as_of``."""
        return Path(self.out.format(as_of=as_of.isoformat()))


class EvaluateStep(Section):
    """Check the scores of one label horizon before as_of against what happened
    (klantwaarde evaluate); skipped while there are none."""

    step: Literal["evaluate"]
    reads_source: ClassVar[bool] = True


class TrainStep(Section):
    """Train, compare and register the challengers at as_of (klantwaarde train)."""

    step: Literal["train"]
    reads_source: ClassVar[bool] = True


class PromoteStep(Section):
    """Make champion every challenger of the train step before it that wins by the configured
    promotion rule (models.yaml promotion)."""

    step: Literal["promote"]
    reads_source: ClassVar[bool] = False


STEPS: dict[str, type[Section]] = {"score": ScoreStep, "lists": ListsStep,
                                   "evaluate": EvaluateStep, "train": TrainStep,
                                   "promote": PromoteStep}
StepSpec = Annotated[ScoreStep | ListsStep | EvaluateStep | TrainStep | PromoteStep,
                     Field(discriminator="step")]


class PipelineSpec(Section):
    """A pipeline file."""

    description: str = ""
    source: str | None = None  # SRC as on the command line; --source overrides it
    config: Path | None = None  # a --config folder or file for the steps; --config overrides it
    schedule: ScheduleSpec | None = None
    runs: Path  # run records and the lock
    steps: tuple[StepSpec, ...] = Field(min_length=1)

    @field_validator("steps", mode="before")
    @classmethod
    def _tagged(cls, value: Any) -> Any:
        """``- score`` and ``- lists: {out: ...}`` as the step models read them."""
        return [_tagged(item) for item in value] if isinstance(value, list) else value

    @field_validator("steps")
    @classmethod
    def _order(cls, steps: tuple[StepSpec, ...]) -> tuple[StepSpec, ...]:
        names = [s.step for s in steps]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"the step {twice[0]} appears more than once; each step runs once "
                             "per run")
        if "promote" in names and "train" not in names[:names.index("promote")]:
            raise ValueError("promote makes champion the winners of the train step before it: "
                             "put - train before - promote")
        return steps


def _tagged(item: Any) -> Any:
    """A step written as its name, or as its name with options, as the step models read it;
    anything else is left for the validation to report."""
    if isinstance(item, str):
        return {"step": item}
    if isinstance(item, dict) and len(item) == 1:
        ((name, options),) = item.items()
        if options is None or isinstance(options, dict):
            return {"step": name, **(options or {})}
    return item


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline file, with the command line's --source and --config applied."""

    file: Path
    spec: PipelineSpec

    @property
    def name(self) -> str:
        return self.file.stem

    @property
    def lock_file(self) -> Path:
        return self.spec.runs / "pipeline.lock"

    def schedule(self) -> ScheduleSpec:
        """The schedule; an input error for a pipeline without one."""
        if self.spec.schedule is None:
            raise InputError(f"{self.file} has no schedule: run it with klantwaarde run "
                             f"{self.file} --as-of YYYY-MM-DD, or give it one (schedule: "
                             "{cron: '0 6 1 * *', timezone: Europe/Amsterdam}).")
        return self.spec.schedule


def load_pipeline(file: Path, source: str | None = None, config: Path | None = None
                  ) -> Pipeline:
    """Read and validate a pipeline file; ``source`` and ``config`` override its own."""
    if not file.is_file():
        raise InputError(f"Pipeline {file} does not exist. Pass a pipeline file such as "
                         "pipelines/monthly_scoring.yaml (paths are taken from the working "
                         "directory).")
    try:
        spec = PipelineSpec.model_validate(read_yaml(file))
    except ValidationError as exc:
        raise ConfigError(_explain(exc, file)) from None
    spec = spec.model_copy(update={"source": source or spec.source,
                                   "config": config or spec.config})
    reading = [s.step for s in spec.steps if s.reads_source]
    if reading and spec.source is None:
        raise ConfigError(f"{file}: key 'source' is missing, and the step(s) "
                          f"{', '.join(reading)} read a source. Fix: set source: (a folder, "
                          ".duckdb file or Ibis URL) in the file, or pass --source.")
    return Pipeline(file, spec)


def _explain(exc: ValidationError, file: Path) -> str:
    lines = [f"{file}: invalid pipeline."]
    errors = exc.errors()
    for err in errors:
        loc = err["loc"]
        if err["type"] == "too_short" and any(e["loc"][0] == "steps" and len(e["loc"]) > 1
                                              for e in errors):
            continue  # the steps that failed, reported one by one, left too few
        where = _where(loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed(loc[:-1])
            lines.append(f"  {where}: unknown key; allowed keys: {', '.join(allowed)}."
                         + did_you_mean(str(loc[-1]), allowed))
        elif err["type"] == "missing":
            lines.append(f"  {where}: missing key.")
        elif err["type"] in ("union_tag_not_found", "model_attributes_type"):
            lines.append(f"  {where}: write a step as its name (- score) or as its name with "
                         f"its options (- lists: {{out: 'lists/{{as_of}}'}}), not "
                         f"{err.get('input')!r}.")
        elif err["type"] == "union_tag_invalid":
            tag = err["ctx"]["tag"]
            lines.append(f"  {where}: unknown step '{tag}'; the steps are "
                         f"{', '.join(STEPS)}." + did_you_mean(tag, STEPS))
        elif err["type"] == "value_error":
            lines.append(f"  {where}: {message}")
        else:
            lines.append(f"  {where}: {message} (got {err.get('input')!r}).")
    return "\n".join(lines)


def _where(loc: tuple[int | str, ...]) -> str:
    """Where in the file: ``key 'schedule.cron'``, ``steps: step 2 (lists), key 'out'``."""
    if loc[0] == "steps" and len(loc) > 1:
        step = f"steps: step {int(loc[1]) + 1}"
        if len(loc) > 2:
            step += f" ({loc[2]})"
        return step + (f", key '{'.'.join(map(str, loc[3:]))}'" if len(loc) > 3 else "")
    return f"key '{'.'.join(map(str, loc))}'"


def _allowed(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed at ``loc``, the place of an unknown key."""
    if not loc:
        return list(PipelineSpec.model_fields)
    if loc == ("schedule",):
        return list(ScheduleSpec.model_fields)
    return [k for k in STEPS[str(loc[-1])].model_fields if k != "step"]
