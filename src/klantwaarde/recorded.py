"""Outcomes are data: the contacts managers record on the page join the source's interactions.

A source opened for any command (``validation.open_valid_source``) gets, where an application
database exists, the recorded visits, calls and e-mails as rows of its interactions table: one
treatment record, read by the features (attention), the labels (``label_contacted``, what the
response model learns from) and ``klantwaarde evaluate``. A recorded contact that the source
already holds (same customer, day and kind) counts once; an attempt that did not reach the
customer is none (``appdb.recorded_contacts``).
"""

from __future__ import annotations

import ibis

from klantwaarde.appdb import recorded_contacts
from klantwaarde.config import Config
from klantwaarde.contract import table_spec
from klantwaarde.sources import RawTable, Source
from klantwaarde.typed import ISO_POINT, typed_table

COLUMNS = ("customer_id", "date", "kind", "account_manager")
TYPES = {"customer_id": "string", "date": "date", "kind": "string", "account_manager": "string"}


def with_recorded_contacts(source: Source, cfg: Config) -> Source:
    """``source`` with the recorded contacts in its interactions table; ``source`` itself where
    there are none."""
    found = recorded_contacts(cfg)
    if found is None or found[0].empty:
        return source
    rows, where = found
    recorded = ibis.memtable(rows.astype({"date": "datetime64[s]"}), schema=TYPES)
    raw = source.tables.get("interactions")
    if raw is None:
        table, origin = recorded, f"the outcomes recorded on the page ({where})"
    else:
        typed = typed_table(raw.table, table_spec("interactions"), raw.formats)
        have = [c for c in COLUMNS if c in typed.columns]
        typed = typed.select(*have)
        recorded = recorded.select(*have).cast(typed.schema())
        known = typed.select(customer_id=typed.customer_id, date=typed.date,
                             kind_=typed.kind.lower().strip())
        fresh = recorded.mutate(kind_=recorded.kind.lower().strip()) \
            .anti_join(known, ["customer_id", "date", "kind_"]).drop("kind_")
        table = typed.union(fresh)
        origin = f"{raw.origin} and the outcomes recorded on the page ({where})"
    notice = (f"interactions: {len(rows):,} contacts recorded on the account managers' page "
              f"({where}) are part of the treatment record")
    tables = {**source.tables, "interactions": RawTable("interactions", table, origin,
                                                         ISO_POINT)}
    return Source(source.location, tables, [*source.notices, notice])
