"""The outcome form, checked: what is wrong with each field, in words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from klantwaarde.appdb import KINDS, RESULTS
from klantwaarde.web.scope import Outcome

MAX_NEXT_STEP, MAX_NOTE = 200, 2000


def outcome(form: Mapping[str, str], as_of: dt.date, horizon_months: int
            ) -> tuple[Outcome | None, dict[str, str]]:
    """The outcome of a submitted form, or None and an error per field. The contact date lies
    after the month ``as_of`` and within the label horizon after it (what evaluate measures)."""
    errors: dict[str, str] = {}
    kind = str(form.get("kind", ""))
    if kind not in KINDS:
        errors["kind"] = f"choose {', '.join(KINDS[:-1])} or {KINDS[-1]}"
    result = str(form.get("result", ""))
    if result not in RESULTS:
        errors["result"] = f"choose one of {', '.join(RESULTS)}"
    last = (pd.Timestamp(as_of) + pd.DateOffset(months=horizon_months)).date()
    day = None
    try:
        day = dt.date.fromisoformat(str(form.get("contact_date", "")).strip())
    except ValueError:
        errors["contact_date"] = "give the date of the contact as YYYY-MM-DD"
    if day is not None and not as_of < day <= last:
        errors["contact_date"] = f"the contact falls after {as_of} and by {last}"
    next_step = str(form.get("next_step", "")).strip()
    if len(next_step) > MAX_NEXT_STEP:
        errors["next_step"] = f"at most {MAX_NEXT_STEP} characters"
    note = str(form.get("note", "")).strip()
    if len(note) > MAX_NOTE:
        errors["note"] = f"at most {MAX_NOTE} characters"
    if errors or day is None:
        return None, errors
    return Outcome(kind, day, result, next_step, note), errors
