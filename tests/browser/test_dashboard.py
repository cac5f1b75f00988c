"""The dashboard in a real browser (headless Debian Chromium, Selenium) against the real
service and vLLM: upload -> augment -> review -> train -> playground -> evaluate -> report, as
tests/browser/walk.py walks it, asserting on what each page shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.browser import LAPTOP, PHONE, missing_browser, set_width, start_browser
from tests.browser.walk import walk
from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", ["laptop", "phone"])
def test_dashboard_walk(dashboard_url: str, tmp_path: Path, width: str) -> None:
    """The whole walk at a laptop's width (1280 px) and again at a phone's (390 px)."""
    problem = missing_browser()
    assert problem is None, problem
    # DOCADAPT_TEST_SCREENSHOTS=docs/screenshots refreshes the README's screenshots (both widths
    # are taken during the laptop walk).
    shots = os.environ.get("DOCADAPT_TEST_SCREENSHOTS") if width == "laptop" else None
    driver = start_browser()
    if width == "phone":
        set_width(driver, PHONE)
    try:
        seen = walk(
            driver, dashboard_url, ADMIN_KEY, tmp_path / "files", Path(shots) if shots else None
        )
        # The viewport stayed at the width under test for the whole walk.
        expected = (PHONE if width == "phone" else LAPTOP)[0]
        assert driver.execute_script("return window.innerWidth") == expected
    except BaseException:
        driver.save_screenshot(str(tmp_path / "failure.png"))
        raise
    finally:
        driver.quit()
    assert seen["examples"] >= 3
    print("dashboard walk, seconds since start:", seen["timings"])
