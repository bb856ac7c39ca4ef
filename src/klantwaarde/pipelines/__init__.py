"""Declared jobs: a pipeline file names its steps, source, configuration and schedule;
``klantwaarde run`` runs one month of it, ``klantwaarde schedule`` runs the months its
schedule has due, and keeps doing so at every fire.
"""

from klantwaarde.pipelines.fires import as_of_of, latest_fire, next_fire
from klantwaarde.pipelines.runs import (
    PipelineBusy,
    Record,
    StepRecord,
    catch_up,
    completed,
    due,
    record_path,
    run_pipeline,
)
from klantwaarde.pipelines.spec import Pipeline, load_pipeline

__all__ = ["Pipeline", "PipelineBusy", "Record", "StepRecord", "as_of_of", "catch_up",
           "completed", "due", "latest_fire", "load_pipeline", "next_fire", "record_path",
           "run_pipeline"]
