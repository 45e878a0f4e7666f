"""The web UI in a real browser: Debian's headless chromium, driven by selenium through
/usr/bin/chromedriver (installed by tests/setup.sh; selenium never downloads a browser).

The UI runs as ``sqlstore ui`` in a subprocess on a free loopback port over a local demo
database. The walk saves a screenshot of each page under docs/screenshots/ (the README
shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import sqlstore
from sqlstore.cli import main
from tests.servers import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
HOSTILE = "<script>window.pwned = 1; alert('pwned')</script><img src=x onerror=alert(2)>"


@dataclass(frozen=True, slots=True)
class Demo:
    """The running UI: its base URL, database URL and the demo's support thread."""

    base: str
    db_url: str
    root: str
    hostile: str


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sqlstore ui exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("sqlstore ui did not start listening")


async def _hostile_thread(db_url: str) -> str:
    async with sqlstore.Store(db_url) as store:
        t = await store.threads.create("mallory", title="hostile <b>title</b>")
        await store.threads.add_message(t.id, "user", [{"type": "text", "text": HOSTILE}])
        return t.id


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``sqlstore demo`` on a fresh file, a hostile thread, then ``sqlstore ui`` serving it."""
    folder = tmp_path_factory.mktemp("ui")
    db_url = f"file:{folder / 'demo.db'}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--url", db_url, "demo"]) == 0
    match = re.search(r"thread (\S+) with 3 forks", out.getvalue())
    assert match
    hostile = asyncio.run(_hostile_thread(db_url))
    port = free_port()
    env = {**os.environ, "SQLSTORE_AUTH_TOKEN": ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sqlstore.cli import main; raise SystemExit(main())",
            "ui",
            "--url",
            "file:demo.db",
            "--port",
            str(port),
        ],
        env=env,
        cwd=folder,  # the page shows the URL as a user would type it
    )
    try:
        _wait_for_port(port, proc)
        yield Demo(f"http://127.0.0.1:{port}", db_url, match.group(1), hostile)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless chromium with a fresh profile and no background traffic."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The browser console's errors since the last call."""
    return [
        e["message"]
        for e in driver.get_log("browser")  # type: ignore[no-untyped-call]
        if e["level"] == "SEVERE"
    ]


def shot(driver: webdriver.Chrome, name: str) -> None:
    """Save the viewport as docs/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def first_link(driver: webdriver.Chrome, prefix: str) -> str:
    """The href of the page's first link whose path starts with ``prefix``."""
    for a in driver.find_elements(By.CSS_SELECTOR, "a[href]"):
        href = a.get_attribute("href") or ""
        if href.split("://", 1)[-1].split("/", 1)[-1].startswith(prefix.lstrip("/")):
            return href
    raise AssertionError(f"no link to {prefix}")


def test_walk_every_page_with_screenshots(demo: Demo, browser: webdriver.Chrome) -> None:
    d = browser
    console_errors(d)
    pages = {
        "overview": "/",
        "threads": "/threads",
        "thread": f"/thread?id={demo.root}",
        "forks": "/forks",
        "approvals": "/approvals",
        "feedback": "/feedback",
        "teams": "/teams",
        "checkpoints": "/checkpoints",
    }
    for name, path in pages.items():
        d.get(demo.base + path)
        assert d.find_element(By.TAG_NAME, "h1").text, name
        assert "Error" not in d.title, (name, d.title)
        shot(d, name)
    d.get(demo.base + "/teams")
    d.get(first_link(d, "/team?"))
    assert "Demo research team" in d.find_element(By.CSS_SELECTOR, "pre.config").text
    shot(d, "team")
    d.get(first_link(d, "/session?"))
    assert len(d.find_elements(By.CSS_SELECTOR, "section.run")) == 2
    shot(d, "session")
    d.get(demo.base + "/checkpoints")
    d.get(first_link(d, "/checkpoints?thread_id=langgraph"))
    d.get(first_link(d, "/checkpoint?"))  # the newest: stopped at the interrupt
    assert "Publish this draft?" in d.find_element(By.CSS_SELECTOR, ".interrupt").text
    shot(d, "checkpoint")
    # The chat: the image is decoded, tool calls open on a click.
    d.get(f"{demo.base}/thread?id={demo.root}")
    image = d.find_element(By.CSS_SELECTOR, "img.image")
    assert d.execute_script("return arguments[0].naturalWidth", image) == 16
    tool = d.find_element(By.CSS_SELECTOR, "details.tool")
    assert not tool.get_attribute("open")
    tool.find_element(By.TAG_NAME, "summary").click()
    assert tool.get_attribute("open") is not None and "captured" in tool.text
    assert console_errors(d) == []


def test_open_a_fork_tree(demo: Demo, browser: webdriver.Chrome) -> None:
    d = browser
    d.get(demo.base + "/forks")
    d.find_element(By.CSS_SELECTOR, "main table a").click()
    nodes = d.find_elements(By.CSS_SELECTOR, "ul.tree a.node")
    assert len(nodes) == 4
    assert d.find_elements(By.CSS_SELECTOR, "ul.tree ul ul a.node")  # a fork of a fork
    shot(d, "fork_tree")
    title = nodes[-1].text
    nodes[-1].click()
    assert d.find_element(By.TAG_NAME, "h1").text == title
    assert "Forked from" in d.find_element(By.TAG_NAME, "main").text
    assert console_errors(d) == []


def test_approve_and_see_it_leave_the_pending_list(demo: Demo, browser: webdriver.Chrome) -> None:
    d = browser
    d.get(demo.base + "/approvals")
    rows = d.find_elements(By.CSS_SELECTOR, "tr[id^='approval-']")
    assert len(rows) == 2
    row_id = rows[0].get_attribute("id")
    rows[0].find_element(By.CSS_SELECTOR, "button.ok").click()
    notice = WebDriverWait(d, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".notice"))
    assert "Done: approved" in notice[0].text
    left = [r.get_attribute("id") for r in d.find_elements(By.CSS_SELECTOR, "tr[id^='approval-']")]
    assert left and row_id not in left
    d.get(f"{demo.base}/thread?id={demo.root}")
    assert "Approved:" in d.find_element(By.CSS_SELECTOR, ".chat").text
    assert console_errors(d) == []


def test_a_hostile_message_renders_as_text(demo: Demo, browser: webdriver.Chrome) -> None:
    d = browser
    d.get(f"{demo.base}/thread?id={demo.hostile}")
    assert d.find_element(By.CSS_SELECTOR, ".msg .text").text == HOSTILE
    assert d.find_element(By.TAG_NAME, "h1").text == "hostile <b>title</b>"
    with pytest.raises(NoAlertPresentException):
        _ = d.switch_to.alert.text
    assert d.execute_script("return window.pwned === undefined") is True
    assert d.find_elements(By.CSS_SELECTOR, "main img") == []
    assert console_errors(d) == []
