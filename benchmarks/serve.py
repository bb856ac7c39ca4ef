"""Benchmark: the account managers' page (`klantwaarde serve`) under 50 concurrent managers.

Generates (once, kept under ``--data``, gitignored) a scored base of 1,000,000 customers over
6,000 account managers: the newest month and ``--months`` - 1 earlier ones (the page charts
them), written with the scores table's own writer (``write_scores``, ``SCHEMA``). The values are
drawn with numpy (seeded), not simulated and scored: churn probabilities, margins over the
horizon and the last 12 months, upgrade probabilities, next-best categories, adoption margins,
contact effects, pyramid tiers, qualification cells, policies, categories, loss drivers and
remedies, and the decisions of ``klantwaarde.decisions.decide`` as ``score`` stores them, so
that every manager's sheets are full at the default capacity (30 contacts a month). As with
``reasons_for: listed``, the at-risk customers carry churn reasons and the cross-sell customers
upgrade reasons, in plain language.

Each run makes a new application database beside the scores: ``--clients`` users through
``users.add_user`` (one argon2id hash each, timed) and the other managers' users inserted with
one shared hash (hashing 6,000 passwords takes minutes; the table holds a user per manager all
the same). Then it starts ``klantwaarde serve`` as a process of its own on a free loopback port,
and measures:

  start    process start to the first answer (``/login``), and to the first ``/month`` (the
           server loads the month when it starts: Parquet, lists, the earlier months), with the
           server's memory
  login    every client logs in as a different manager at once (argon2id; not in the mix)
  browse   for ``--seconds``, each client in a loop, back to back: one of its sheets
           (``/month?sheet=``, every fourth one sorted by a column), then up to two customers
           taken from that sheet's HTML (``/customer?id=``)
  export   each client its workbook (``/export.xlsx``, XLSX written per request) ``--exports``
           times, at once: measured apart, not in the browse mix
  static   for ``--seconds``, the same clients fetching the style sheet (``/static/style.css``)
           from the same server: what the server, the HTTP stack and the client cost for a
           request that does no work

Per route: requests, errors (any answer but 200, or none within 30 s), p50, p95 and p99 latency
and requests a second, the static baseline side by side, the CPU seconds per request of the
server and of the client, and the server's memory. The clients are one asyncio process with an
``httpx.AsyncClient`` each, on the same machine as the server: their CPU competes with the
server's (the static run shows how much).

Target (issue "Account managers' page"): with 1,000,000 scored customers and 6,000 managers, 50
concurrent managers browsing for 60 s, p95 latency under 200 ms and no errors.

Run from the repository root:

    .venv/bin/python benchmarks/serve.py                   # 1,000,000 customers, 50 clients
    .venv/bin/python benchmarks/serve.py --customers 20000 --managers 200 --clients 10 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

AS_OF = dt.date(2026, 10, 31)
PASSWORD = "benchmark password"
SEED = 7
CATEGORIES = ("tools", "safety", "fasteners", "cleaning", "packaging", "electrical", "plumbing",
              "office supplies", "workwear", "adhesives", "lighting", "storage", "hydraulics")
SORTABLE = {"at risk": "churn_probability", "win-back": "lost_margin",
            "cross-sell": "upgrade_probability", "loss accounts": "revenue"}
CSRF = re.compile(r'name="csrf" value="([^"]*)"')
CUSTOMER = re.compile(r'href="/customer\?id=([^"&]+)"')
TIMEOUT = 30.0
TARGET_MS = 200.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--managers", type=int, default=6000)
    parser.add_argument("--months", type=int, default=6,
                        help="scored months, the newest included")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the browse run and of the static run")
    parser.add_argument("--exports", type=int, default=2, help="workbooks per client")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/serve"))
    return parser.parse_args()


# ------------------------------------------------------------------------------- the scored base

def month_ends(newest: dt.date, count: int) -> list[dt.date]:
    """``count`` month ends up to ``newest``, oldest first."""
    found, day = [], newest
    for _ in range(count):
        found.append(day)
        day = day.replace(day=1) - dt.timedelta(days=1)
    return found[::-1]


def texts(pick: np.ndarray, vocabulary: list[str], rows: np.ndarray) -> object:
    """A list<string> column: for each row in ``rows`` the phrases ``pick`` (rows x k indices
    into ``vocabulary``), an empty list elsewhere."""
    import pyarrow as pa

    counts = np.where(rows, pick.shape[1], 0)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    values = pa.array(vocabulary).take(pa.array(pick[rows].ravel()))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def reason_phrases() -> dict[str, list[str]]:
    """Plain-language reasons as the sheets show them, with varied numbers."""
    churn = ([f"no visit for {n} months" for n in range(2, 13)]
             + [f"no call for {n} months" for n in range(2, 13)]
             + [f"{n} complaints in the last 90 days" for n in range(2, 7)]
             + [f"orders down {p}% on the previous quarter" for p in range(15, 95, 5)]
             + [f"order lines down {p}% on last year" for p in range(10, 90, 5)]
             + [f"invoices paid {n} days late on average" for n in range(10, 60, 5)]
             + [f"last order {n} days ago" for n in range(30, 120, 10)])
    upgrade = ([f"{p}% of peers buy {c}; this one never has" for p in range(40, 90, 5)
                for c in CATEGORIES]
               + [f"revenue up {p}% on last year" for p in range(5, 60, 5)]
               + [f"{n} order lines a month in {c}" for n in range(3, 30, 3) for c in CATEGORIES])
    return {"churn": churn, "upgrade": upgrade}


def month_table(cfg, as_of: dt.date, ids: np.ndarray, managers: np.ndarray,
                base: dict[str, np.ndarray], rng: np.random.Generator) -> object:
    """One scored month of the customers ``ids`` (with ``base``'s values, drifted a little),
    with its decisions and reasons, as a Table of SCHEMA."""
    import pandas as pd
    import pyarrow as pa

    from klantwaarde.decisions import AT_RISK, decide
    from klantwaarde.profitability.segments import POLICIES, REMEDIES, pyramid_tiers
    from klantwaarde.scoring.store import SCHEMA

    n = len(ids)
    drift = rng.lognormal(0, 0.08, n)
    revenue = base["revenue"] * drift
    rate = base["margin_rate"] + rng.normal(0, 0.01, n)
    net_margin = revenue * rate
    churn = np.clip(base["churn"] * rng.lognormal(0, 0.15, n), 0.001, 0.999)
    horizon = cfg.labels.horizon_months
    future = net_margin * horizon / 12 * (1 - churn) * rng.lognormal(0, 0.2, n)
    upgrade = np.clip(base["upgrade"] * rng.lognormal(0, 0.1, n), 0.001, 0.999)
    categories = base["categories"]
    adoption = upgrade * base["peer_margin"] * drift
    effect = np.clip(base["effect"] * rng.lognormal(0, 0.1, n), 0, 0.6)
    effect = np.where(rng.random(n) < 0.02, np.nan, effect)  # no estimate for a few
    days = np.maximum(1, base["days"] + rng.integers(-5, 6, n))
    frame = pd.DataFrame({
        "as_of": as_of, "customer_id": ids, "account_manager": managers,
        "churn_probability": churn, "future_net_margin": future,
        "margin_at_risk": churn * np.maximum(future, 0), "upgrade_probability": upgrade,
        "expected_uplift": adoption * 0.5, "adoption_margin": adoption,
        "contact_effect": effect, "revenue": revenue, "net_margin": net_margin,
        "days_since_last_order": days})
    frame["tier"] = pyramid_tiers(frame.revenue, cfg.profitability)
    significant = frame.tier.isin(cfg.profitability.significant_tiers).to_numpy()
    profitable = net_margin > 0
    strategic = base["strategic"]
    keys = list(zip(significant, profitable, strategic, strict=True))
    frame["policy"] = [POLICIES[k] for k in keys]
    frame["cell"] = [", ".join(("" if s else "not ") + w for s, w in
                               zip(k, ("significant", "profitable", "strategic"), strict=True))
                     for k in keys]
    frame["category"] = np.select(
        [~profitable, significant & strategic, significant],
        ["loss account", "key account", "large account"], "small account")
    drivers = np.array(list(REMEDIES), dtype=object)[base["driver"]]
    frame["loss_driver"] = np.where(profitable, None, drivers)
    frame["remedy"] = frame.loss_driver.map(REMEDIES)
    decisions = decide(frame, as_of, cfg.lists, cfg.costs, horizon)
    frame = frame.join(decisions)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    phrases = reason_phrases()
    columns = {
        "churn_version": pa.array(np.full(n, 4)), "margin_version": pa.array(np.full(n, 4)),
        "upgrade_version": pa.array(np.full(n, 3)), "response_version": pa.array(np.full(n, 2)),
        "in_sample": pa.array(np.zeros(n, bool)),
        "next_best_categories": texts(categories, list(CATEGORIES), np.ones(n, bool)),
        "churn_reasons": texts(rng.integers(0, len(phrases["churn"]), (n, 3)),
                               phrases["churn"], (frame.retention == AT_RISK).to_numpy()),
        "margin_reasons": texts(np.zeros((n, 0), int), ["none"], np.zeros(n, bool)),
        "upgrade_reasons": texts(rng.integers(0, len(phrases["upgrade"]), (n, 3)),
                                 phrases["upgrade"], frame.cross_sell.to_numpy(bool))}
    for name, column in columns.items():
        table = table.append_column(name, column)
    return table.select(SCHEMA.names).cast(SCHEMA)


def generate(folder: Path, customers: int, managers: int, months: int) -> dict[str, float]:
    """The config folder and scores table of the base under ``folder``; seconds it took."""
    import yaml

    from klantwaarde.config import load_config
    from klantwaarde.scoring.store import write_scores

    started = time.perf_counter()
    config, store = folder / "config", folder / "scores" / "scores.duckdb"
    config.mkdir(parents=True, exist_ok=True)
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(store.resolve()), "parquet": str((store.parent / "parquet").resolve())}))
    (config / "web.yaml").write_text(yaml.safe_dump(
        {"report": str((folder / "report-{as_of}.html").resolve())}))
    cfg = load_config(config)
    rng = np.random.default_rng(SEED)
    width = len(str(managers))
    names = np.array([f"AM{i:0{width}d}" for i in range(1, managers + 1)], dtype=object)
    weight = rng.gamma(4.0, size=managers)  # some managers have more customers than others
    ids = np.array([f"C{i:07d}" for i in range(1, customers + 1)], dtype=object)
    owner = names[rng.choice(managers, customers, p=weight / weight.sum())]
    revenue = rng.lognormal(9.0, 1.3, customers)
    base = {
        "revenue": revenue,
        "margin_rate": rng.normal(0.06, 0.09, customers),  # about a quarter lose money
        "churn": rng.beta(1.3, 7.0, customers),
        "upgrade": rng.beta(1.5, 5.0, customers),
        "peer_margin": rng.lognormal(7.0, 1.0, customers),
        "effect": rng.beta(2.0, 25.0, customers),
        # a fifth have not ordered for more than 120 days
        "days": np.where(rng.random(customers) < 0.2, rng.integers(121, 400, customers),
                         rng.integers(1, 121, customers)),
        "strategic": rng.random(customers) < 0.1,
        "driver": rng.integers(0, 5, customers),
        "categories": np.argsort(rng.random((customers, len(CATEGORIES))), axis=1)[:, :3],
    }
    for i, as_of in enumerate(month_ends(AS_OF, months)):
        # earlier months lack the customers acquired since (2% a month)
        keep = np.ones(customers, bool) if i == months - 1 else (
            np.arange(customers) < customers * (1 - 0.02 * (months - 1 - i)))
        table = month_table(cfg, as_of, ids[keep], owner[keep],
                            {k: v[keep] for k, v in base.items()}, rng)
        write_scores(store, store.parent / "parquet", as_of, table)
        print(f"  {as_of}: {table.num_rows:,} customers written "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return {"seconds": time.perf_counter() - started}


def make_users(config: Path, clients: int) -> tuple[list[str], dict[str, float]]:
    """A new application database with a manager user per account manager (named by the code
    in lower case); the users of the clients, spread over the managers, through ``add_user``.
    Their names and the seconds taken."""
    import sqlalchemy as sa

    from klantwaarde import appdb
    from klantwaarde.config import load_config
    from klantwaarde.web.users import HASHER, add_user, known_managers

    cfg = load_config(config)
    path = appdb.sqlite_path(cfg)
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    engine = appdb.connect(cfg)
    managers = known_managers(cfg)
    chosen = [managers[int(i)] for i in np.linspace(0, len(managers) - 1, clients)]
    started = time.perf_counter()
    for code in chosen:
        add_user(engine, code.lower(), "manager", [code], PASSWORD, managers)
    each = (time.perf_counter() - started) / len(chosen)
    started = time.perf_counter()
    shared, at = HASHER.hash(PASSWORD), appdb.now()
    rest = [m for m in managers if m not in set(chosen)]
    with engine.begin() as con:
        con.execute(appdb.users.insert(), [
            {"name": m.lower(), "role": "manager", "password_hash": shared,
             "disabled": False, "created_at": at} for m in rest])
        con.execute(appdb.user_managers.insert(),
                    [{"user_name": m.lower(), "account_manager": m} for m in rest])
        total = con.execute(sa.select(sa.func.count()).select_from(appdb.users)).scalar_one()
    engine.dispose()
    return [c.lower() for c in chosen], {"add_user": each, "rest": time.perf_counter() - started,
                                         "users": total}


# ------------------------------------------------------------------------------------ the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of ``pid`` in GiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024 / 2**30
    return found["VmRSS"], found["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(config: Path, log: Path) -> tuple[subprocess.Popen, str, float]:
    """``klantwaarde serve`` on a free loopback port; the process, its URL and the seconds to
    its first answer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "klantwaarde", "serve", "--port", str(port), "--config",
         str(config)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                if response.status == 200:
                    return process, url, time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not answer within 120 s")


# ------------------------------------------------------------------------------------ the clients

class Recorder:
    """Latencies (ms) and errors per route."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    async def get(self, client, route: str, url: str, **kw) -> str | None:
        started = time.perf_counter()
        try:
            response = await client.get(url, **kw)
            ok, why = response.status_code == 200, f"HTTP {response.status_code}"
        except Exception as exc:  # a timeout or a dropped connection is an error of the run
            ok, why, response = False, f"{type(exc).__name__}: {exc}", None
        self.times.setdefault(route, []).append((time.perf_counter() - started) * 1e3)
        if not ok:
            self.errors.setdefault(route, []).append(why)
            return None
        return response.text if response.headers.get("content-type", "").startswith(
            "text/") else ""


async def login(client, name: str) -> float:
    started = time.perf_counter()
    form = await client.get("/login")
    token = CSRF.search(form.text).group(1)
    answer = await client.post("/login", data={"name": name, "password": PASSWORD,
                                               "csrf": token})
    if answer.status_code != 303:
        raise SystemExit(f"login of {name} answered {answer.status_code}: {answer.text[:300]}")
    return (time.perf_counter() - started) * 1e3


async def browse(client, seconds: float, rec: Recorder, rng: random.Random) -> None:
    from klantwaarde.lists import SHEETS

    deadline = time.perf_counter() + seconds
    turn = rng.randrange(len(SHEETS))
    while time.perf_counter() < deadline:
        sheet = SHEETS[turn % len(SHEETS)]
        params = {"sheet": sheet}
        if turn % 4 == 3:
            params |= {"sort": SORTABLE[sheet], "order": rng.choice(["asc", "desc"])}
        turn += 1
        page = await rec.get(client, "month", "/month", params=params)
        ids = CUSTOMER.findall(page or "")
        for customer in rng.sample(ids, min(2, len(ids))):
            if time.perf_counter() >= deadline:
                break
            await rec.get(client, "customer", "/customer", params={"id": customer})


async def fetch_static(client, seconds: float, rec: Recorder) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        await rec.get(client, "static", "/static/style.css")


async def exports(client, times: int, rec: Recorder) -> None:
    for _ in range(times):
        await rec.get(client, "export.xlsx", "/export.xlsx")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(url: str, names: list[str], args: argparse.Namespace, pid: int,
               started: float) -> dict:
    """Log every client in, then the browse, export and static runs; per run the Recorder, the
    wall seconds and the CPU seconds of server and client."""
    import httpx

    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    clients = [httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits)
               for _ in names]
    runs: dict[str, tuple[Recorder, float, float, float]] = {}
    try:
        # the server loads the month when it starts; the first /month waits for it
        await login(clients[0], names[0])
        first = await clients[0].get("/month", timeout=600)
        if first.status_code != 200:
            raise SystemExit(f"/month answered {first.status_code}: {first.text[:500]}")
        month_load = time.perf_counter() - started
        rss_loaded = memory(pid)
        logins = await asyncio.gather(*(login(c, n) for c, n in zip(clients, names,
                                                                     strict=True)))

        async def phase(name: str, work) -> None:
            rec = Recorder()
            server, mine, started = cpu_seconds(pid), client_cpu(), time.perf_counter()
            await asyncio.gather(*(work(c, rec, i) for i, c in enumerate(clients)))
            runs[name] = (rec, time.perf_counter() - started, cpu_seconds(pid) - server,
                          client_cpu() - mine)

        await phase("browse", lambda c, rec, i: browse(c, args.seconds, rec,
                                                       random.Random(SEED + i)))
        await phase("export", lambda c, rec, i: exports(c, args.exports, rec))
        await phase("static", lambda c, rec, i: fetch_static(c, args.seconds, rec))
    finally:
        for c in clients:
            await c.aclose()
    return {"month_load": month_load, "rss_loaded": rss_loaded, "logins": logins, "runs": runs}


# ------------------------------------------------------------------------------------- the report

def figures(times: list[float]) -> str:
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return f"{p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {max(times):>8.1f}"


def main() -> None:
    args = parse_args()
    load_average = os.getloadavg()
    folder = args.data / f"{args.customers}-customers-{args.managers}-managers-{args.months}-months"
    ready = folder / "generated.json"
    if ready.exists():
        print(f"reusing {folder}")
        made = json.loads(ready.read_text())
    else:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {folder} ...", flush=True)
        made = generate(folder, args.customers, args.managers, args.months)
        ready.write_text(json.dumps(made))
    config = folder / "config"
    names, users = make_users(config, args.clients)
    started = time.perf_counter()
    process, url, first_answer = start_server(config, folder / "server.log")
    try:
        result = asyncio.run(load(url, names, args, process.pid, started))
        rss, peak = memory(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(f"\n{os.cpu_count()} CPUs, shared: load average at the start {load_average[0]:.2f} "
          f"{load_average[1]:.2f} {load_average[2]:.2f}; the clients run on the same machine "
          "(one asyncio process)")
    print(f"base: {args.customers:,} customers over {args.managers:,} managers, {args.months} "
          f"scored months (generated in {made['seconds']:.0f} s), newest {AS_OF}")
    print(f"users: {users['users']:,}; add_user {users['add_user'] * 1e3:.0f} ms a user "
          f"(argon2id) for the {args.clients} clients' users, the other "
          f"{users['users'] - args.clients:,} inserted with one shared hash in "
          f"{users['rest']:.1f} s")
    print(f"server: first answer "
          f"{first_answer:.1f} s after the start; the first /month (the month loaded) "
          f"{result['month_load']:.1f} s after the start; memory "
          f"{result['rss_loaded'][0]:.2f} GiB then, {rss:.2f} GiB at the end (peak "
          f"{peak:.2f} GiB)")
    logins = result["logins"]
    print(f"login of {len(logins)} clients at once (argon2id, not in the mix): p50 "
          f"{np.percentile(logins, 50):.0f} ms, max {max(logins):.0f} ms")
    print(f"\n{'run':<7} {'route':<12} {'requests':>9} {'errors':>7} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>7} {'server CPU':>11} "
          f"{'client CPU':>11}")
    for run, (rec, wall, server, mine) in result["runs"].items():
        every = [t for times in rec.times.values() for t in times]
        routes = list(rec.times) + (["all"] if len(rec.times) > 1 else [])
        for route in routes:
            times = every if route == "all" else rec.times[route]
            errors = sum(map(len, rec.errors.values())) if route == "all" else len(
                rec.errors.get(route, []))
            cpu = (f"{server / len(every) * 1e3:>8.1f} ms {mine / len(every) * 1e3:>8.1f} ms"
                   if route == routes[-1] else "")
            print(f"{run:<7} {route:<12} {len(times):>9,} {errors:>7,} {figures(times)} "
                  f"{len(times) / wall:>7.1f} {cpu}")
    print("(server and client CPU: per request of the run, over all its routes)")
    for run, (rec, _, _, _) in result["runs"].items():
        for route, errors in rec.errors.items():
            print(f"errors of {run} {route}: {sorted(set(errors))[:5]}")
    rec = result["runs"]["browse"][0]
    browsing = [t for times in rec.times.values() for t in times]
    p95 = float(np.percentile(browsing, 95))
    errors = sum(map(len, rec.errors.values()))
    static = float(np.percentile(result["runs"]["static"][0].times["static"], 95))
    print(f"browse p95 {p95:.1f} ms against the static file's {static:.1f} ms "
          f"({p95 / static:.1f}x) with the same {args.clients} clients")
    met = p95 < TARGET_MS and errors == 0
    print(f"target: p95 under {TARGET_MS:.0f} ms and no errors, {args.clients} clients, "
          f"{args.customers:,} customers: {'met' if met else 'NOT met'} (p95 {p95:.1f} ms, "
          f"{errors} errors)")


if __name__ == "__main__":
    main()
