"""The dashboard in a real browser (headless Debian Chromium, Selenium) against the real
service and vLLM: upload -> augment -> review -> train -> playground -> evaluate -> report, as
tests/browser/walk.py walks it, asserting on what each page shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.browser import missing_browser, start_browser
from tests.browser.walk import walk
from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.e2e


def test_dashboard_walk(dashboard_url: str, tmp_path: Path) -> None:
    problem = missing_browser()
    assert problem is None, problem
    # DOCADAPT_TEST_SCREENSHOTS=docs/screenshots refreshes the README's screenshots.
    shots = os.environ.get("DOCADAPT_TEST_SCREENSHOTS")
    driver = start_browser()
    try:
        seen = walk(
            driver, dashboard_url, ADMIN_KEY, tmp_path / "files", Path(shots) if shots else None
        )
    except BaseException:
        driver.save_screenshot(str(tmp_path / "failure.png"))
        raise
    finally:
        driver.quit()
    assert seen["examples"] >= 3
    print("dashboard walk, seconds since start:", seen["timings"])
