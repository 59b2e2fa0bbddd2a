"""Headless Chromium for the report.html tests, and screenshots of pages for the README.

Debian's `chromium` and `chromium-driver` (`tools/chromium.sh install`) driven by Selenium, with
the flags that keep a headless Chromium from calling home (it would count as network requests),
console and network events logged for the tests to read.

  python -m tests.browser PAGE.html OUT.png [--width=1300] [--section=explorer]   # a screenshot
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
MISSING = (
    None
    if CHROMIUM and CHROMEDRIVER
    else "needs Debian's chromium and chromium-driver (tools/chromium.sh install)"
)


@contextmanager
def chromium(width: int = 1300, height: int = 1000) -> Iterator:
    """A Selenium WebDriver on a fresh headless Chromium profile, quit on exit."""
    from selenium import webdriver  # noqa: PLC0415 - a test dependency only
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def screenshot(page: str, out: str, width: int = 1300, section: str = "") -> None:
    """A PNG of the whole page (its full height) as headless Chromium renders it; with
    `section`, of that section only (`explorer`: with the cursor on its plane's centre and on
    one of its points, so the decoded and hovered images show)."""
    import os  # noqa: PLC0415
    import time  # noqa: PLC0415

    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    with chromium(width) as driver:
        driver.get("file://" + os.path.abspath(page))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(height) + 100, 12000))
        time.sleep(1)  # BokehJS renders after load
        if not section:
            driver.save_screenshot(out)
            return
        if section == "explorer":
            plot = driver.find_element(By.ID, "explorer-plot")
            x, y = driver.execute_script(
                "const s = Bokeh.documents[0].get_model_by_name('explorer')"
                ".renderers[0].data_source; return [s.data.x[0], s.data.y[0]];"
            )
            dx, dy = driver.execute_script(
                "const v = Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name('explorer'));"
                "const r = v.el.getBoundingClientRect();"
                "const c = document.getElementById('explorer-plot').getBoundingClientRect();"
                "return [r.left + v.frame.x_scale.compute(arguments[0]) - c.left - c.width / 2,"
                " r.top + v.frame.y_scale.compute(arguments[1]) - c.top - c.height / 2];",
                x,
                y,
            )
            ActionChains(driver).move_to_element_with_offset(plot, int(dx), int(dy)).perform()
            time.sleep(0.3)
        driver.find_element(By.ID, section).screenshot(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--section", default="", help="a section's id, e.g. explorer or runs")
    args = parser.parse_args()
    screenshot(args.page, args.out, args.width, args.section)
