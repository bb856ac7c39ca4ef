"""Benchmark: exact SHAP (xgboost's ``pred_contribs``, what scoring's reasons use) per row, with
this environment's xgboost against another interpreter's.

Trains (once, kept under ``--data``, gitignored) an xgboost model of depth 6 with 1,000 trees on
synthetic data (20,000 rows × 60 features, a non-linear target with noise, so that the trees are
full), saved as JSON. Then each interpreter, in a child process of its own, loads that model
on one thread and times ``pred_contribs`` on ``--rows`` rows (best of ``--repeat``); the
contributions of every interpreter are compared with the first's.

``--against`` names the other interpreters, e.g. the Python of an environment with xgboost 3.2
(TreeSHAP) to compare with xgboost ≥ 3.3 (QuadratureTreeSHAP) in this one. Target: about 2.5x
faster than 3.2 (2.5 ms against 7.1 ms per row in the issue), the same contributions up to
float32 rounding.

Run from the repository root:

    .venv/bin/python benchmarks/shap_speed.py
    .venv/bin/python benchmarks/shap_speed.py --against /path/to/xgboost-3.2/env/bin/python
    .venv/bin/python benchmarks/shap_speed.py --rows 2000 --against ...    # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS, FEATURES, TREES, DEPTH = 20_000, 60, 1_000, 6


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows explained per interpreter")
    parser.add_argument("--repeat", type=int, default=1, help="timings per interpreter (best)")
    parser.add_argument("--against", action="append", default=[],
                        help="another interpreter with numpy and xgboost (repeatable)")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/shap"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # model, X, out
    return parser.parse_args()


def child(model: str, features: str, out: str, repeat: int) -> None:
    """In the interpreter being measured: only numpy and xgboost."""
    import xgboost as xgb

    booster = xgb.Booster(model_file=model)
    booster.set_param({"nthread": 1})
    matrix = xgb.DMatrix(np.load(features), nthread=1)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        contributions = booster.predict(matrix, pred_contribs=True)
        best = min(best, time.perf_counter() - started)
    margin = booster.predict(matrix, output_margin=True)
    np.save(out, contributions)
    print(json.dumps({"xgboost": xgb.__version__, "python": sys.version.split()[0],
                      "seconds": best,
                      "additivity": float(np.abs(contributions.sum(1) - margin).max())}))


def ensure_model(folder: Path) -> tuple[Path, Path]:
    """The model's JSON and the features, trained once with this environment's xgboost."""
    import xgboost as xgb

    model, features = folder / f"depth{DEPTH}-{TREES}trees.json", folder / "X.npy"
    if model.exists() and features.exists():
        print(f"reusing {model}")
        return model, features
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)  # noqa: N806
    X[rng.random(X.shape) < 0.05] = np.nan
    filled = np.nan_to_num(X)
    y = (np.sin(filled[:, 0] * 2) + filled[:, 1] * filled[:, 2] + np.abs(filled[:, 3])
         + (filled[:, 4] > 0.5) * filled[:, 5] + rng.normal(scale=0.5, size=ROWS))
    print(f"training {TREES} trees of depth {DEPTH} on {ROWS:,} × {FEATURES} ...", flush=True)
    started = time.perf_counter()
    booster = xgb.train({"max_depth": DEPTH, "eta": 0.05, "tree_method": "hist", "seed": 0,
                         "nthread": os.cpu_count() or 1}, xgb.DMatrix(X, y), TREES)
    print(f"  trained in {time.perf_counter() - started:.0f} s")
    booster.save_model(model)
    np.save(features, X)
    return model, features


def main() -> None:
    args = parse_args()
    if args.child:
        child(*args.child, repeat=args.repeat)
        return
    import xgboost as xgb

    model, features = ensure_model(args.data)
    leaves = sum(tree.count("leaf") for tree in xgb.Booster(model_file=model).get_dump())
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{TREES} trees, {leaves / TREES:.1f} leaves per tree", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.npy"
        np.save(rows, np.load(features)[: args.rows])
        for number, python in enumerate([sys.executable, *args.against]):
            out = Path(tmp) / f"contributions-{number}.npy"
            done = subprocess.run([python, __file__, "--repeat", str(args.repeat), "--child",
                                   str(model), str(rows), str(out)],
                                  capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{python} failed:\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["contributions"] = np.load(out)
            results.append(result)
            print(f"  xgboost {result['xgboost']} (Python {result['python']}): "
                  f"{result['seconds']:.1f} s", flush=True)
    first = results[0]
    scale = float(np.abs(first["contributions"]).max())
    print(f"\npred_contribs on {args.rows:,} rows, one thread, depth {DEPTH}, {TREES} trees, "
          "side by side:")
    print(f"  {'xgboost':<9} {'Python':<8} {'ms per row':>10} {'vs first':>9} "
          f"{'max |diff|':>11} {'sum-margin':>11}")
    for result in results:
        diff = float(np.abs(result["contributions"] - first["contributions"]).max())
        print(f"  {result['xgboost']:<9} {result['python']:<8} "
              f"{result['seconds'] / args.rows * 1e3:>10.2f} "
              f"{result['seconds'] / first['seconds']:>8.2f}x {diff:>11.2e} "
              f"{result['additivity']:>11.2e}")
    print(f"  (largest contribution {scale:.2f}; vs first: time against the first interpreter; "
          "max |diff|: against its contributions; "
          "sum-margin: largest gap between a row's contributions and its margin)")


if __name__ == "__main__":
    main()
