"""Headless Chromium for tests: the system chromium and chromedriver, no network, no selenium-manager.

CI installs them with ``make setup-browser`` (Debian packages ``chromium`` and
``chromium-driver``); a machine without them skips the browser tests with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import require

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def chromium_binary() -> Path:
    """The system Chromium; skip the test when it or chromedriver is not installed (fail in CI)."""
    binary = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    if binary is None or not CHROMEDRIVER.is_file():
        require(
            f"headless Chromium unavailable (chromium: {binary or 'missing'}, {CHROMEDRIVER}: "
            f"{'present' if CHROMEDRIVER.is_file() else 'missing'}); install with `make setup-browser`"
        )
    return Path(binary)


@contextmanager
def headless_chromium(profile_dir: Path) -> Iterator["object"]:
    """A selenium Chrome driver on the system Chromium with a throw-away profile in ``profile_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = chromium_binary()
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
