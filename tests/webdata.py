"""A scored base for the tests of the account managers' page: two scored months of a few
managers' customers (written with the scores table's writer), a configuration and users.

The names are hostile on purpose: a manager code and a customer id hold HTML and script, and
every page must show them as text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from klantwaarde import appdb
from klantwaarde.config import Config, load_config
from klantwaarde.scoring.store import SCHEMA, write_scores
from klantwaarde.web.users import add_user

AS_OF, EARLIER = dt.date(2025, 6, 30), dt.date(2025, 5, 31)
XSS_MANAGER = 'AM<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
XSS_CUSTOMER = "C<script>window.__xss=1;alert(1)</script>"
MANAGERS = ("AM001", "AM002", "AM003", XSS_MANAGER)
PER_MANAGER = 14
PASSWORD = "correct horse battery"
# name -> role, managers
USERS = {"anna": ("manager", ["AM001"]), "bram": ("manager", ["AM002"]),
         "lead": ("lead", ["AM001", "AM002"]), "admin": ("admin", []),
         "xss": ("manager", [XSS_MANAGER]), "gone": ("manager", ["AM003"])}


def _rows(as_of: dt.date, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for m, manager in enumerate(MANAGERS):
        for i in range(PER_MANAGER):
            customer = f"C{m}{i:03d}" if (m, i) != (3, 0) else XSS_CUSTOMER
            churn = float(rng.uniform(0.05, 0.95))
            gone = i == PER_MANAGER - 1
            margin = float(rng.uniform(1000, 40000) if gone else rng.uniform(-3000, 40000))
            loss = margin < 0
            rows.append({
                "as_of": as_of, "customer_id": customer, "account_manager": manager,
                "churn_version": 1, "margin_version": 1, "upgrade_version": 1,
                "response_version": 1,
                "churn_probability": churn, "future_net_margin": margin,
                "margin_at_risk": churn * max(margin, 0),
                "upgrade_probability": float(rng.uniform(0, 1)),
                "next_best_categories": ["tools", "safety"],
                "expected_uplift": float(rng.uniform(0, 3000)),
                "adoption_margin": float(rng.uniform(0, 80000)),
                "contact_effect": float(rng.uniform(0.01, 0.3)),
                "revenue": abs(margin) * 5 + 1000, "net_margin": margin,
                "tier": "A" if margin > 20000 else "C",
                "category": "loss account" if loss else "large account",
                "cell": "no, yes, no", "policy": "keep",
                "loss_driver": "small_orders" if loss else None,
                "remedy": "set a minimum order size" if loss else None,
                "churn_reasons": ["no visit for 5 months",
                                  "<script>window.__xss=1</script> complaints"],
                "margin_reasons": ["orders down 40% on the previous quarter"],
                "upgrade_reasons": ["64% of peers buy tools; this one never has",
                                    "<script>window.__xss=1</script> in reasons"],
                "in_sample": False,
                "days_since_last_order": 200 if gone else int(rng.integers(1, 60)),
            })
    return rows


def scored_base(root: Path, **web: object) -> Config:
    """``root/config``: the scores table under ``root/scores`` with the months EARLIER and
    AS_OF; lists of at most 4 per manager, a quarter held out; ``web`` over web.yaml."""
    folder = root / "config"
    folder.mkdir(parents=True)
    store = root / "scores" / "scores.duckdb"
    (folder / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(store), "parquet": str(store.parent / "parquet")}))
    (folder / "lists.yaml").write_text(yaml.safe_dump(
        {"capacity": {"default": 4}, "control_share": 0.25}))
    (folder / "web.yaml").write_text(yaml.safe_dump(
        {"reload_seconds": 0, "report": str(root / "report-{as_of}.html")} | web))
    for month, seed in ((EARLIER, 1), (AS_OF, 2)):
        write_scores(store, store.parent / "parquet", month,
                     pa.Table.from_pylist(_rows(month, seed), schema=SCHEMA))
    return load_config(folder)


def with_users(cfg: Config) -> Config:
    """The USERS added, each with PASSWORD; ``gone`` disabled."""
    from klantwaarde.web.users import disable_user

    engine = appdb.connect(cfg)
    for name, (role, managers) in USERS.items():
        add_user(engine, name, role, managers, PASSWORD, MANAGERS)
    disable_user(engine, "gone")
    engine.dispose()
    return cfg


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``klantwaarde serve`` in a process of its own on a free loopback port."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> Server:
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        env = {k: v for k, v in os.environ.items() if k != "KLANTWAARDE_DEBUG"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "klantwaarde", "serve", "--port", str(self.port),
             "--config", str(self.config)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped: {self.process.stderr.read()}")
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within 60 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
