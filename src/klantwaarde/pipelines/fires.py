"""Fire times of a schedule and the as_of each stands for: the day before the fire's date (in
the schedule's time zone), so a fire on the 1st of a month stands for the month before's end.

Only the first fire of a day counts: every fire of one day stands for the same as_of.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from klantwaarde.pipelines.spec import ScheduleSpec

_LOOK_BACK = dt.timedelta(days=8 * 366)  # the longest a schedule may go without a fire


def as_of_of(fire: dt.datetime) -> dt.date:
    """The as_of a fire stands for: the day before its date."""
    return fire.date() - dt.timedelta(days=1)


def fire_days(schedule: ScheduleSpec, first: dt.date, now: dt.datetime) -> Iterator[dt.datetime]:
    """The first fire of each day from the day ``first`` up to ``now`` (an aware time), oldest
    first."""
    trigger = schedule.trigger()
    day = first
    while True:
        midnight = dt.datetime.combine(day, dt.time(), trigger.timezone)
        fire = trigger.get_next_fire_time(None, midnight)
        if fire is None or fire > now:
            return
        yield fire
        day = fire.date() + dt.timedelta(days=1)


def latest_fire(schedule: ScheduleSpec, now: dt.datetime) -> dt.datetime | None:
    """The latest fire at or before ``now`` (the first of its day), or None when the schedule
    has not fired in eight years."""
    window = dt.timedelta(days=32)
    while True:
        begin = (now - window).astimezone(schedule.trigger().timezone).date()
        fires = list(fire_days(schedule, begin, now))
        if fires or window >= _LOOK_BACK:
            return fires[-1] if fires else None
        window *= 2


def next_fire(schedule: ScheduleSpec, now: dt.datetime) -> dt.datetime | None:
    """The first fire after ``now``."""
    return schedule.trigger().get_next_fire_time(None, now + dt.timedelta(microseconds=1))
