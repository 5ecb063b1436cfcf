"""The offline stack, in-process and as the ``python -m mock_services`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_services.stack import CREDENTIALS_FILE, OfflineStack
from tests.twilio_spec import ValidatingHttpClient, http_call
from twilio_e2ee.errors import ConfigurationError
from twilio_e2ee.servers import bind_loopback
from twilio_e2ee.twilio_http import twilio_rest_client

ROOT = Path(__file__).resolve().parent.parent


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def test_stack_serves_three_services_with_shared_credentials(offline_stack: OfflineStack) -> None:
    stack = offline_stack
    urls = stack.urls_dict()
    assert len({urls["cards_url"], urls["twilio_url"], urls["backend_url"]}) == 3
    assert urls["virgil_api_url"] == urls["cards_url"] == stack.cards_url
    creds = stack.credentials
    assert urls["twilio_conversations_service_sid"] == creds.twilio.service_sid
    assert urls["virgil_app_id"] == creds.virgil.app_id
    assert stack.cards_service_public_key.der == stack.cards.service_public_key.der
    # Twilio through the official SDK with the development auth token
    assert creds.twilio.auth_token is not None
    client = twilio_rest_client(
        creds.twilio.account_sid, creds.twilio.auth_token, base_url=stack.twilio_url
    )
    client.http_client = ValidatingHttpClient(stack.twilio_url)  # check every answer vs the spec
    config = client.conversations.v1.configuration().fetch()
    assert config.default_chat_service_sid == creds.twilio.service_sid
    # the backend's tokens are accepted by both mocks: they share the credentials
    with _client() as http:
        identity = f"stack-user-{time.monotonic_ns()}"
        auth = http.post(stack.backend_url + "/authenticate", json={"identity": identity})
        assert auth.status_code == 200, auth.text
        bearer = {"Authorization": f"Bearer {auth.json()['authToken']}"}
        twilio_token = http.get(stack.backend_url + "/twilio-jwt", headers=bearer).json()[
            "twilioToken"
        ]
        virgil_token = http.get(stack.backend_url + "/virgil-jwt", headers=bearer).json()[
            "virgilToken"
        ]
        conv = client.conversations.v1.conversations.create(friendly_name="stack")
        posted = http_call(
            stack.twilio_url,
            "POST",
            f"/v1/Conversations/{conv.sid}/Messages",
            auth=None,
            data={"Body": "from a client token"},
            headers={"X-Twilio-Token": twilio_token},
        )
        assert posted.status_code == 201 and posted.json()["author"] == identity
        search = http.post(
            stack.cards_url + "/card/v5/actions/search",
            json={"identities": [identity]},
            headers={"Authorization": f"Virgil {virgil_token}"},
        )
        assert search.status_code == 200 and search.json() == []
    # one journal shows what each service saw
    services = {e.service for e in stack.journal.entries}
    assert {"twilio", "cards"} <= services


def test_not_started_stack_says_so() -> None:
    stack = OfflineStack()
    for attribute in ("twilio_url", "cards_url", "backend_url", "twilio", "cards"):
        with pytest.raises(ConfigurationError, match="start"):
            getattr(stack, attribute)
    stack.stop()  # harmless


def test_refuses_a_non_loopback_host() -> None:
    stack = OfflineStack(host="0.0.0.0")
    with pytest.raises(ConfigurationError, match="loopback"):
        stack.start()
    assert not stack.running


def test_restart_with_db_dir_loses_nothing(tmp_path: Path) -> None:
    with OfflineStack(tmp_path) as stack:
        creds = stack.credentials
        token = creds.twilio.auth_token
        assert token is not None
        client = twilio_rest_client(creds.twilio.account_sid, token, base_url=stack.twilio_url)
        client.http_client = ValidatingHttpClient(stack.twilio_url)
        conv = client.conversations.v1.conversations.create(unique_name="kept")
        client.conversations.v1.conversations(conv.sid).participants.create(identity="alice")
        sent = [
            client.conversations.v1.conversations(conv.sid)
            .messages.create(author="alice", body=f"m{i}")
            .sid
            for i in range(3)
        ]
        with _client() as http:
            signup = http.post(
                stack.backend_url + "/signup", json={"identity": "bob", "password": "correct horse"}
            )
            assert signup.status_code == 201, signup.text
        service_key = stack.cards_service_public_key.der
    assert (tmp_path / CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600
    with OfflineStack(tmp_path) as again:
        assert again.credentials.twilio.account_sid == creds.twilio.account_sid
        assert again.credentials.virgil.app_key.der == creds.virgil.app_key.der
        assert again.cards_service_public_key.der == service_key
        client = twilio_rest_client(creds.twilio.account_sid, token, base_url=again.twilio_url)
        client.http_client = ValidatingHttpClient(again.twilio_url)
        conv2 = client.conversations.v1.conversations("kept").fetch()
        assert conv2.sid == conv.sid
        parts = client.conversations.v1.conversations(conv.sid).participants.list()
        assert [p.identity for p in parts] == ["alice"]
        msgs = client.conversations.v1.conversations(conv.sid).messages.list()
        assert [m.sid for m in msgs] == sent
        with _client() as http:
            login = http.post(
                again.backend_url + "/authenticate",
                json={"identity": "bob", "password": "correct horse"},
            )
            assert login.status_code == 200, login.text


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return dict(json.loads(path.read_text()))
        if proc.poll() is not None:
            raise AssertionError(f"stack exited early: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("stack did not write its urls file in time")


def _run_cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mock_services", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def test_cli_runs_writes_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    urls_file = tmp_path / "urls.json"
    db = tmp_path / "state"
    with bind_loopback() as probe:  # a free port to pin with a flag
        fixed_port = probe.getsockname()[1]
    proc = _run_cli(
        "--urls-file", str(urls_file), "--db", str(db), "--twilio-port", str(fixed_port)
    )
    try:
        urls = _wait_for(urls_file, proc)
        expected = {
            "cards_url",
            "virgil_api_url",
            "twilio_url",
            "backend_url",
            "twilio_account_sid",
            "twilio_auth_token",
            "twilio_conversations_service_sid",
            "virgil_app_id",
            "cards_service_public_key",
        }
        assert expected <= set(urls)
        assert urls["twilio_url"] == f"http://127.0.0.1:{fixed_port}"
        auth = (urls["twilio_account_sid"], urls["twilio_auth_token"])
        config = http_call(urls["twilio_url"], "GET", "/v1/Configuration", auth=auth)
        assert config.status_code == 200
        assert config.json()["default_chat_service_sid"] == urls["twilio_conversations_service_sid"]
        created = http_call(
            urls["twilio_url"], "POST", "/v1/Conversations", data={"UniqueName": "cli"}, auth=auth
        )
        assert created.status_code == 201
        with _client() as http:
            assert http.get(urls["backend_url"] + "/healthz").status_code == 200
    finally:
        code, out, err = _stop(proc)
    assert code == 0, err
    assert urls["twilio_url"] in out and "stopped" in out
    # a second run on the same --db has the same credentials and the conversation
    urls_file.unlink()
    proc = _run_cli("--urls-file", str(urls_file), "--db", str(db), "--quiet")
    try:
        again = _wait_for(urls_file, proc)
        assert again["twilio_account_sid"] == urls["twilio_account_sid"]
        fetched = http_call(again["twilio_url"], "GET", "/v1/Conversations/cli", auth=auth)
        assert fetched.status_code == 200 and fetched.json()["sid"] == created.json()["sid"]
    finally:
        code, out, err = _stop(proc)
    assert code == 0, err
    assert out == ""


def test_cli_reports_a_port_in_use(tmp_path: Path) -> None:
    with bind_loopback() as busy:
        port = busy.getsockname()[1]
        proc = _run_cli("--cards-port", str(port), "--quiet")
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"cannot bind 127.0.0.1:{port}" in err


@pytest.fixture()
def keep_signal_handlers() -> Any:
    """The CLI's main() installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_cli_setup_mistakes_are_clear_errors_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keep_signal_handlers: Any
) -> None:
    from mock_services.__main__ import main

    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    assert main(["--quiet", "--db", str(a_file)]) == 2
    assert "a-file" in capsys.readouterr().err
    assert main(["--quiet", "--urls-file", str(tmp_path / "missing" / "urls.json")]) == 2
    assert "urls.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["--quiet", "--cards-port", "99999"])
    assert info.value.code == 2 and "0..65535" in capsys.readouterr().err


def test_db_dir_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="a-file"):
        OfflineStack(a_file)


def test_credentials_file_is_0600_even_over_a_stale_temp_file(tmp_path: Path) -> None:
    stale = tmp_path / (CREDENTIALS_FILE + ".tmp")
    stale.write_text("{}")
    stale.chmod(0o644)
    OfflineStack(tmp_path)
    assert (tmp_path / CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("port", [-1, 65536, "80", True])
def test_bad_ports_are_configuration_errors(port: Any) -> None:
    with pytest.raises(ConfigurationError, match="port"):
        OfflineStack(twilio_port=port).start()
