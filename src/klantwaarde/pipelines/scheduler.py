"""The embedded scheduler of ``klantwaarde schedule``: one cron job per pipeline (APScheduler
3), run in the calling thread, until Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import suppress

from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from klantwaarde.pipelines.spec import Pipeline


def serve(pipelines: Sequence[Pipeline], job: Callable[[Pipeline], None]) -> None:
    """Call ``job(pipeline)`` at every fire of each pipeline's schedule; return on Ctrl-C.

    Jobs run one at a time in this thread, so Ctrl-C also stops a running one; fires missed
    while a job ran (or the machine slept) are merged into one late call.
    """
    scheduler = BlockingScheduler(executors={"default": DebugExecutor()})
    # APScheduler takes an exception of a job, Ctrl-C included, for its failure and goes on:
    # a job that is interrupted has the scheduler shut down from another thread instead, as
    # soon as the scheduler's loop lets go of its job stores.
    stopper = threading.Thread(target=_stop, args=(scheduler,))

    def fire(pipeline: Pipeline) -> None:
        if stopper.ident is not None:
            return  # Ctrl-C came during an earlier job of this round
        try:
            job(pipeline)
        except KeyboardInterrupt:
            stopper.start()

    for pipeline in pipelines:
        scheduler.add_job(fire, pipeline.schedule().trigger(), args=[pipeline],
                          id=str(pipeline.file), name=pipeline.name, coalesce=True,
                          misfire_grace_time=None, max_instances=1)
    try:
        scheduler.start()
    except KeyboardInterrupt:
        _stop(scheduler)
    if stopper.ident is not None:
        stopper.join()


def _stop(scheduler: BlockingScheduler) -> None:
    with suppress(SchedulerNotRunningError):  # stopped by the other way already
        scheduler.shutdown(wait=False)
