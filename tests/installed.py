"""What the tests need from the system rather than from PyPI: Chromium, PostgreSQL's server, a
Java runtime. Where one is not installed, a test skips and says why; where ``.ci/run`` has
installed them (it sets REQUIRED), the same test fails instead, so that a broken installation
is never a quiet skip."""

from __future__ import annotations

import os

import pytest

REQUIRED = "KLANTWAARDE_REQUIRE_INSTALLED"  # set by .ci/run, which installs them


class Missing(RuntimeError):
    """A part the tests need is not installed on this machine (not: failed to start)."""


def missing(reason: str) -> None:
    """Skip for a part that is not installed; fail instead where REQUIRED is set."""
    if os.environ.get(REQUIRED):
        pytest.fail(f"{reason}, but {REQUIRED} is set: this test must run here")
    pytest.skip(reason)
