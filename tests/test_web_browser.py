"""The page in a real browser: headless Chromium (Debian's chromium, driven by Playwright for
Python) against ``klantwaarde serve`` in a process of its own."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from installed import missing
from klantwaarde.lists import build_lists, manager_tables
from klantwaarde.scoring.store import read_scores
from webdata import AS_OF, PASSWORD, XSS_CUSTOMER, XSS_MANAGER, Server, scored_base, with_users

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, object]]:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run "
                "installs it)")
    root = tmp_path_factory.mktemp("browser")
    cfg = with_users(scored_base(root))
    server = Server(root / "config").start()
    try:
        yield server, cfg
    finally:
        server.stop()


@pytest.fixture
def page(served) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
            tab = browser.new_page()
            tab.dialogs = []  # every alert, confirm or prompt that opens
            tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
            yield tab
            browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _log_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/month")


def test_a_manager_works_the_at_risk_sheet_and_logs_out(served, page) -> None:
    server, cfg = served
    tables = manager_tables(build_lists(read_scores(cfg.scoring.parquet, AS_OF), AS_OF,
                                        cfg).tables, "AM001")
    expected = list(tables["at risk"].customer_id)
    assert expected
    _log_in(page, server.url, "anna")
    assert page.locator("nav.sheets a[aria-current=page]").inner_text().startswith("at risk")
    assert page.locator("#sheet a.customer").all_inner_texts() == expected
    page.click(f"#sheet a.customer >> text={expected[0]}")
    assert page.inner_text("#customer-id") == expected[0]
    assert page.locator("svg.chart polyline").count() == 2
    page.select_option("select[name=kind]", "visit")
    page.fill("input[name=contact_date]", "2025-07-03")
    page.select_option("select[name=result]", "saved")
    page.fill("input[name=next_step]", "quarterly review in October")
    page.fill("textarea[name=note]", "agreed to a new delivery schedule")
    page.click("form.outcome button[type=submit]")
    row = page.locator("table.outcomes-list tbody tr").first
    assert "agreed to a new delivery schedule" in row.inner_text()
    assert "visit" in row.inner_text() and "saved" in row.inner_text()
    page.click("header nav >> text=My month")
    assert "saved (visit, 2025-07-03)" in page.locator("#sheet tbody tr").first.inner_text()
    page.click("form.logout button")
    page.wait_for_url(f"{server.url}/login")
    page.goto(f"{server.url}/month")
    assert page.url == f"{server.url}/login"
    assert page.dialogs == []


def test_html_in_names_and_reasons_is_shown_as_text_and_never_runs(served, page) -> None:
    server, _ = served
    _log_in(page, server.url, "xss")
    assert page.inner_text("p.lead strong") == XSS_MANAGER
    page.click("nav.sheets a >> text=cross-sell")
    reasons = " ".join(page.locator("#sheet td.reasons").all_inner_texts())
    assert "<script>window.__xss=1</script> in reasons" in reasons
    page.goto(f"{server.url}/customer?{urlencode({'id': XSS_CUSTOMER})}")
    assert page.inner_text("#customer-id") == XSS_CUSTOMER
    assert page.inner_text("#manager") == XSS_MANAGER
    assert page.evaluate("window.__xss") is None
    assert page.locator("script").count() == 0 and page.locator("main img").count() == 0
    assert page.dialogs == []
