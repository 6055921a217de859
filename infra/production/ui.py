"""The Prefect UI in a real headless Chromium (Debian chromium + chromium-driver, Selenium).

The server asks for the auth string (its UI shows a login page); we type it in as an operator
does, then read the pages and keep screenshots.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from infra.production.processes import RehearsalError

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser() -> Any:
    """Headless Chromium through chromedriver."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        raise RehearsalError(
            "Debian chromium and chromium-driver are not installed (make setup-test installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def body_text(driver: Any) -> str:
    """What the page shows now."""
    return str(driver.find_element("tag name", "body").text)


def log_in(driver: Any, ui_url: str, auth: str) -> None:
    """Type the auth string into the UI's login page (it keeps it for later API calls)."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{ui_url}/dashboard")
    WebDriverWait(driver, 60).until(lambda d: d.find_elements("css selector", "input[type='password']"))
    driver.find_element("css selector", "input[type='password']").send_keys(auth, Keys.ENTER)
    WebDriverWait(driver, 60).until(lambda d: "/login" not in d.current_url)


def show(driver: Any, url: str, expected: list[str], shot: Path, timeout_s: float = 90.0) -> str:
    """Open `url`, wait until every `expected` text shows, screenshot it; the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    try:
        WebDriverWait(driver, timeout_s).until(lambda d: all(e in body_text(d) for e in expected))
    except TimeoutException:
        missing = [e for e in expected if e not in body_text(driver)]
        raise RehearsalError(f"{url} does not show {missing} (see {shot})") from None
    finally:
        driver.save_screenshot(str(shot))
    return body_text(driver)


def screenshot_runs(ui_url: str, auth: str, names: list[str], run_ids: list[str], out: Path) -> list[Path]:
    """The runs page listing `names`, and each run's page Completed; the screenshots."""
    out.mkdir(parents=True, exist_ok=True)
    driver = browser()
    shots = []
    try:
        log_in(driver, ui_url, auth)
        shots.append(out / "ui-runs.png")
        show(driver, f"{ui_url}/runs", names, shots[-1])
        for name, run_id in zip(names, run_ids, strict=True):
            shots.append(out / f"ui-run-{name}.png")
            show(driver, f"{ui_url}/runs/flow-run/{run_id}", [name, "Completed"], shots[-1])
    finally:
        driver.quit()
    return shots
