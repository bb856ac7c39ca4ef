"""`klantwaarde demo`: the whole product on a simulated base, in a folder of its own."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import matplotlib.image
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import run_cli
from installed import missing
from klantwaarde.demo import MARK, prepare_folder
from klantwaarde.errors import InputError

SECTIONS = ["headline", "whale", "pyramid", "qualification", "loss-drivers", "models",
            "evaluation", "lists"]


Demo = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo in a folder of its own, with its own cache folder: ArviZ's once-a-day notice
    (written under it) is due."""
    root = tmp_path_factory.mktemp("demo")
    # beside another test worker, training's threads share two cores: allow it some minutes
    result = run_cli("demo", "--out", str(root / "demo"), "--customers", "300",
                     env={"XDG_CACHE_HOME": str(root / "cache")}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "demo", result


def test_demo_runs_the_product_end_to_end(demo: Demo, tmp_path: Path) -> None:
    folder, result = demo
    stdout = result.stdout
    assert "Demo done in" in stdout
    assert re.search(r"the whale curve peaks at \d+% of total profit; the top 20% of customers "
                     r"make \d+% of revenue; the \d+% of customers that make the last 20% earn "
                     r"-?\d+\.\d% of their revenue and take \d+% of all cost-to-serve",
                     " ".join(stdout.split()))  # as one line, however the terminal wraps it
    # only its own summary: no library notice (MLflow's, Python warnings) on either stream
    assert result.stderr == ""
    assert not re.search(r"Warning|\b(INFO|WARNING)\b|Successfully registered|Created version",
                         stdout)
    assert f"mlflow ui --backend-store-uri sqlite:///{folder / 'models' / 'mlflow.db'}" in stdout
    assert (folder / "source" / "orders.parquet").exists()
    assert (folder / "profitability" / "customers.csv").exists()
    uri = f"sqlite:///{folder / 'models' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)  # not the registry an earlier test connected
    for target in ("churn", "margin", "upgrade"):
        assert client.get_model_version_by_alias(f"klantwaarde-{target}", "champion")
    with duckdb.connect(str(folder / "scores" / "scores.duckdb"), read_only=True) as con:
        months = con.execute("SELECT as_of, count(*) FROM scores GROUP BY as_of").fetchall()
    assert [str(m) for m, _ in months] == ["2025-12-31"] and months[0][1] > 200
    index = pd.read_csv(folder / "lists" / "2025-12-31" / "index.csv")
    assert len(index) > 0 and index.at_risk.sum() + index.cross_sell.sum() > 0
    assert all((folder / "lists" / "2025-12-31" / "managers" / f"{s}.xlsx").exists()
               for s in index.file_stem)
    # the printed command goes on with the demo's configuration
    lists = run_cli("lists", "--as-of", "2025-12-31", "--out", str(tmp_path / "again"),
                    "--config", str(folder / "config"))
    assert lists.returncode == 0, lists.stderr


def test_the_demo_replaces_its_own_folder_and_refuses_any_other(tmp_path: Path) -> None:
    earlier = tmp_path / "demo"
    earlier.mkdir()
    (earlier / MARK).write_text("")
    (earlier / "old.txt").write_text("from an earlier demo")
    assert sorted(p.name for p in prepare_folder(earlier).iterdir()) == [MARK]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "data.csv").write_text("keep me")
    with pytest.raises(InputError, match="did not write"):
        prepare_folder(foreign)
    assert (foreign / "data.csv").read_text() == "keep me"


class _Page(HTMLParser):
    """The section ids and image sources of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.sections.append(found.get("id") or "")
        if tag == "img":
            self.images.append(found.get("src") or "")


def test_the_report_is_one_page_with_its_sections_and_charts(demo: Demo) -> None:
    folder, _ = demo
    html = (folder / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    assert page.sections == SECTIONS
    assert len(page.images) == 2 and all(s.startswith("data:image/png;base64,")
                                         for s in page.images)
    for source in page.images:  # real PNG charts, not placeholders
        image = matplotlib.image.imread(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0.05
    assert not re.search(r"(src|href)=\"(http|file|/)", html)  # nothing to fetch: self-contained
    for text in ("klantwaarde-churn", "loss accounts", "AM001", "whale curve peak"):
        assert text in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_renders_in_headless_chromium(demo: Demo, tmp_path: Path) -> None:
    if CHROMIUM is None:
        missing("needs Chromium (Debian: apt-get install chromium; .ci/run installs it)")
    folder, _ = demo
    url = (folder / "report.html").as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr
    page = _Page()
    page.feed(dom.stdout)
    assert page.sections == SECTIONS and len(page.images) == 2
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1100,2400", url],
                   capture_output=True, timeout=120, check=True)
    pixels = matplotlib.image.imread(shot)[..., :3]
    # the charts' blue (#1f6f8b) is on the page: the embedded images were drawn
    blue = (abs(pixels - [0x1F / 255, 0x6F / 255, 0x8B / 255]) < 0.03).all(axis=-1)
    assert blue.sum() > 20_000  # about 55,000 with both charts


NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_committed_without_outputs_and_import_only_the_package() -> None:
    import nbformat

    assert [n.name for n in NOTEBOOKS] == ["1.0-kw-explore-customer-base.ipynb",
                                           "2.0-kw-compare-models.ipynb",
                                           "3.0-kw-explain-one-customer.ipynb"]
    for path in NOTEBOOKS:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in cells), path.name
        source = "\n".join(c.source for c in cells)
        assert "sys.path" not in source and "from src" not in source, path.name


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_the_notebooks_run_on_the_demo(notebook: Path, demo: Demo, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill

    folder, _ = demo
    # the kernel inherits this process's environment: not the store an earlier test connected
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    done = papermill.execute_notebook(str(notebook), str(tmp_path / notebook.name),
                                      parameters={"demo": str(folder)}, kernel_name="python3",
                                      cwd=str(notebook.parent), progress_bar=False)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = " ".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)
    expected = {"1.0": "profit_makers_share", "2.0": "btyd (BG/NBD + Gamma-Gamma)",
                "3.0": "churn:"}[notebook.name[:3]]
    assert expected in shown
    if notebook.name.startswith(("1.0", "2.0")):  # the charts are drawn
        assert any("image/png" in o.get("data", {}) for o in outputs)
