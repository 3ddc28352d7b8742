"""The console in a real browser: Debian's headless chromium through chromedriver (Selenium).

Files are uploaded with `localbox upload` (finish_batch); the test logs in through the form, browses from the
accounts page to one of those files and checks its content hash, opens the finish_batch job and its per-entry
results, filters the request log and adds and removes a fault.  Screenshots are test artifacts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localbox.domain.content_hash import content_hash
from localbox.testing import LocalboxServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    if "1" in (os.environ.get("LOCALBOX_SKIP_BROWSER"), os.environ.get("LOCALBOX_SKIP_CLIENTS")):
        pytest.skip("LOCALBOX_SKIP_BROWSER=1 or LOCALBOX_SKIP_CLIENTS=1")
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "apt-get install chromium chromium-driver (see .ci/run)"
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--no-proxy-server"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


class Shots:
    def __init__(self, driver: Any, folder: Path) -> None:
        self.driver = driver
        self.folders = [folder]
        if os.environ.get("LOCALBOX_ARTIFACTS"):
            self.folders.append(Path(os.environ["LOCALBOX_ARTIFACTS"]) / "console")
        for f in self.folders:
            f.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> None:
        first = self.folders[0] / f"{name}.png"
        assert self.driver.save_screenshot(str(first))
        assert first.stat().st_size > 1000
        for extra in self.folders[1:]:
            shutil.copy(first, extra / first.name)


def _eventually(probe: Any, timeout: float = 10.0) -> Any:
    """The first truthy value of `probe()` within `timeout` seconds (its last value otherwise)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _stable(probe: Any, timeout: float = 10.0) -> Any:
    """`probe()`, tried again while it meets an element that went stale: the overview, jobs and request
    log pages replace their live region every few seconds (htmx polling), under a test's feet."""
    import time

    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _load(driver: Any, by: str, target: str) -> None:
    """Click the element that loads another page, and wait until the old page is gone: otherwise the next
    lookup may find the old page's element of the same name (both pages have an h1, a #requests table)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def click() -> Any:
        old = driver.find_element("tag name", "html")
        found = driver.find_elements(by, target)
        assert found, f"nothing matches {by}={target!r} on {driver.current_url}"
        found[-1].click()
        return old

    old = _stable(click)
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))


def test_browse_to_an_uploaded_file_and_its_finish_batch_job(box: LocalboxServer, browser: Any,
                                                              tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    box.reset()
    src = tmp_path / "src"
    (src / "reports").mkdir(parents=True)
    for i in range(12):
        (src / "reports" / f"q{i}.csv").write_text(f"quarter,{i}\n" * (i + 1))
    upload = subprocess.run([sys.executable, "-m", "localbox", "upload", str(src), "/Team Share", "--url", box.url,
                             "--token", box.token, "--quiet"], capture_output=True, text=True, timeout=120)
    assert upload.returncode == 0, upload.stderr
    expected_hash = content_hash((src / "reports" / "q7.csv").read_bytes())
    shots = Shots(browser, tmp_path / "screenshots")
    b = browser

    # Log in: a wrong token is refused, the admin token opens the overview.
    b.get(f"{box.url}/console/jobs")
    assert b.current_url.endswith("/console/login")
    b.find_element(By.ID, "token").send_keys("wrong")
    _load(b, By.ID, "login")
    assert "not the admin token" in b.find_element(By.ID, "login-error").text
    shots.take("01-login-refused")
    b.find_element(By.ID, "token").send_keys(box.admin_token)
    _load(b, By.ID, "login")
    assert b.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert box.admin_token not in b.current_url
    shots.take("02-overview")

    # Accounts -> the account's namespace -> /Team Share/reports -> q7.csv.
    _load(b, By.LINK_TEXT, "Accounts & teams")
    assert box.email in b.find_element(By.ID, "accounts").text
    shots.take("03-accounts")
    _load(b, By.CSS_SELECTOR, "#accounts a.browse")
    _load(b, By.LINK_TEXT, "Team Share/")
    _load(b, By.LINK_TEXT, "reports/")
    assert len(b.find_elements(By.CSS_SELECTOR, "#listing a.file")) == 12
    shots.take("04-folder")
    _load(b, By.LINK_TEXT, "q7.csv")
    assert b.find_element(By.ID, "file-name").text == "/Team Share/reports/q7.csv"
    assert b.find_element(By.ID, "content-hash").text == expected_hash
    shots.take("05-file")

    # The finish_batch job that committed them, with its per-entry results.
    _load(b, By.LINK_TEXT, "Batch jobs")
    assert _stable(lambda: b.find_elements(By.CSS_SELECTOR, "#jobs a.job"))
    assert "finish_batch" in _stable(lambda: b.find_element(By.ID, "jobs").text)
    shots.take("06-jobs")
    _load(b, By.CSS_SELECTOR, "#jobs a.job")  # the last one listed
    assert b.find_element(By.ID, "job-state").text == "complete"
    entries = _stable(lambda: [e.text for e in b.find_elements(By.CSS_SELECTOR, "#entries a.entry")])
    assert "/Team Share/reports/q7.csv" in entries and len(entries) == 12
    shots.take("07-job-results")
    _load(b, By.LINK_TEXT, "/Team Share/reports/q7.csv")
    assert b.find_element(By.ID, "content-hash").text == expected_hash

    # The request log, filtered to finish_batch calls.
    _load(b, By.LINK_TEXT, "Request log")
    b.find_element(By.NAME, "route").send_keys("finish_batch")
    _load(b, By.ID, "filter")
    routes = _stable(lambda: [row.find_elements(By.TAG_NAME, "td")[2].text
                              for row in b.find_elements(By.CSS_SELECTOR, "#requests tr")[1:]])
    assert routes and all("finish_batch" in r for r in routes)
    shots.take("08-request-log")

    # A fault, added through the form and removed again.
    _load(b, By.LINK_TEXT, "Faults")
    Select(b.find_element(By.ID, "kind")).select_by_value("too_many_write_operations")
    b.find_element(By.ID, "route").send_keys("files/upload_session/finish_batch")
    b.find_element(By.ID, "times").send_keys("2")
    b.find_element(By.ID, "params").send_keys('{"retry_after": 3}')
    b.find_element(By.ID, "add").click()
    # The form posts asynchronously (htmx): the click returns before the server has the rule.
    [rule] = _eventually(lambda: box.faults())
    assert (rule["kind"], rule["times"], rule["params"]) == ("too_many_write_operations", 2, {"retry_after": 3})
    assert "too_many_write_operations" in b.find_element(By.ID, "faults").text
    shots.take("09-fault-added")
    b.find_element(By.CSS_SELECTOR, "#faults button.remove").click()
    assert _eventually(lambda: not box.faults())
    shots.take("10-fault-removed")
