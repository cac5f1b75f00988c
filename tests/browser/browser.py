"""Headless Debian Chromium driven by Selenium through Debian's matching chromedriver, and the
waits the dashboard walk uses. Selenium, not Playwright: Playwright pins the browser build it
drives (a system Chromium of another version is "not supported" and its protocol may not
match), while Debian ships chromium and chromium-driver as one version, so Selenium's WebDriver
talks to exactly the browser installed; its Python package is pure Python, nothing to download
at run time (Selenium Manager stays unused when the driver's path is given)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LAPTOP = (1280, 900)
PHONE = (390, 844)


def missing_browser() -> str | None:
    """Why the browser cannot start here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and not shutil.which(Path(path).name):
            return (
                f"{path} is missing: install Debian's chromium and chromium-driver "
                "(scripts/install.sh does as root: apt-get install -y chromium chromium-driver)"
            )
    return None


def start_browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def set_width(driver: WebDriver, size: tuple[int, int]) -> None:
    """The viewport at this CSS size (the window adds no chrome in headless mode)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )


def wait(driver: WebDriver, timeout: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.25)


def wait_for(
    driver: WebDriver,
    css: str,
    predicate: Callable[[WebElement], Any] | None = None,
    *,
    timeout: float = 30,
    what: str = "",
) -> WebElement:
    """The first element matching `css` (and `predicate`), waiting for it."""

    def found(d: WebDriver) -> WebElement | bool:
        for el in d.find_elements(By.CSS_SELECTOR, css):
            try:
                if predicate is None or predicate(el):
                    return el
            except Exception:  # stale while the page re-renders: look again
                continue
        return False

    message = f"waited {timeout} s for {what or css}"
    return wait(driver, timeout).until(found, message)


def wait_text(driver: WebDriver, css: str, text: str, *, timeout: float = 30) -> WebElement:
    return wait_for(
        driver, css, lambda el: text in el.text, timeout=timeout, what=f"{css} to say {text!r}"
    )


def screenshot(driver: WebDriver, shots: Path | None, name: str) -> None:
    """The page at laptop and phone width, whole length, into shots/<name>-{laptop,phone}.png;
    first, every form control on it must have a label (checked with or without `shots`)."""
    unlabelled = unlabelled_controls(driver)
    assert not unlabelled, f"{name}: controls without a label: {unlabelled}"
    if shots is None:
        return
    shots.mkdir(parents=True, exist_ok=True)
    for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
        set_width(driver, size)
        height = driver.execute_script(
            "return Math.min(document.documentElement.scrollHeight, 2400)"
        )
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": size[0],
                "height": max(int(height), size[1]),
                "deviceScaleFactor": 1,
                "mobile": size[0] < 600,
            },
        )
        save_small_png(driver.get_screenshot_as_png(), shots / f"{name}-{label}.png")
    set_width(driver, LAPTOP)


def save_small_png(png: bytes, path: Path) -> None:
    """A screenshot in 128 colours: a third of the bytes, the text as sharp (for the README)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def unlabelled_controls(driver: WebDriver) -> list[str]:
    """Form controls a screen reader cannot name: no <label>, aria-label or aria-labelledby."""
    return driver.execute_script(
        """
        return [...document.querySelectorAll("input, select, textarea")]
          .filter((el) => el.type !== "hidden" && !el.labels?.length
                  && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
          .map((el) => el.outerHTML.slice(0, 120));
        """
    )


def console_errors(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
