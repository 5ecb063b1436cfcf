"""Real-browser check: JupyterLab on loopback, the chat workbench run in headless Chromium.

Starts ``jupyter lab`` on a free 127.0.0.1 port with a known token over a temporary copy of
``notebooks/09_workbench.ipynb`` (the committed notebook is never touched), opens it in Debian's
Chromium driven by Playwright, runs all cells from the *Run* menu, waits for the chat widget to
show the expected messages in every column and only ciphertext in Twilio's, and saves screenshots
to ``test-artifacts/``. Skips, saying why, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from twilio_e2ee.credentials import ENV_NAMES

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "09_workbench.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MESSAGES = ["Hello from Alice!", "Hi Alice, Bob here.", "Carol joined the party."]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lab:
    def __init__(self, url: str, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.token = token
        self.process = process
        self.log = log

    def api(self, method: str, path: str) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=10,
        )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} not found: run `make chromium` (as root) to install Debian's chromium"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    for name in ENV_NAMES:
        env.pop(name, None)  # the workbench runs on the offline stack
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    settings = tmp_path / "settings"
    for plugin, value in (
        ("notebook-extension/tracker", {"windowingMode": "none"}),  # render every cell
        ("apputils-extension/notification", {"fetchNews": "false"}),
    ):
        target = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value))
    log = tmp_path / "lab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        f"--LabApp.user_settings_dir={settings}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI often run as root
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Lab(f"http://127.0.0.1:{port}", token, process, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail("jupyter lab exited:\n" + log.read_text()[-3000:])
            try:
                if server.api("GET", "/api/status").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("jupyter lab not ready after 90 s:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        yield server
    finally:
        try:
            for kernel in server.api("GET", "/api/kernels").json():
                server.api("DELETE", f"/api/kernels/{kernel['id']}")
        except (httpx.HTTPError, ValueError):
            pass
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_chat_workbench_renders_in_chromium(lab: Lab) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page: Any = browser.new_page(viewport={"width": 1600, "height": 1000})
            try:
                _run_workbench(page, lab)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "browser-failure.png"))
                print("jupyter lab log:\n" + lab.log.read_text()[-4000:])
                raise
        finally:
            browser.close()
    assert (ARTIFACTS / "browser-chat-workbench.png").stat().st_size > 10_000


STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
RUN_PROMPT = re.compile(r"\[(\*|\d+)\]")


def _run_workbench(page: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
    kernel_idle = page.locator(".jp-StatusBar-Widget", has_text="Idle").first
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _attempt in range(3):  # a click before the kernel session is ready is dropped
        expect(kernel_idle).to_be_visible(timeout=60_000)
        idle.wait_for(timeout=60_000)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        try:
            expect(first_prompt).to_contain_text(RUN_PROMPT, timeout=15_000)
            break
        except AssertionError:
            continue
    chat = page.locator(".e2ee-chat").first
    chat.wait_for(timeout=90_000)
    for user in ("alice", "bob", "carol"):
        column = chat.locator(f".e2ee-user-{user}")
        for text in MESSAGES:
            expect(column).to_contain_text(text, timeout=60_000)
    wire = chat.locator(".e2ee-wire")
    expect(wire).to_contain_text("MII", timeout=30_000)  # DER ciphertext in base64
    wire_text = wire.inner_text()
    assert not any(text in wire_text for text in MESSAGES), wire_text
    idle.wait_for(timeout=60_000)
    stderr = page.locator(STDERR).all_inner_texts()
    chat.scroll_into_view_if_needed()
    chat.screenshot(path=str(ARTIFACTS / "browser-chat-workbench.png"))
    page.screenshot(path=str(ARTIFACTS / "browser-notebook.png"))
    assert [t for t in stderr if "Traceback" in t or "Error" in t] == [], stderr
