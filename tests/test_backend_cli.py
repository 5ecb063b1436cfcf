"""Backend configuration from the environment and the ``python -m twilio_e2ee.backend`` command."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from twilio_e2ee.backend.__main__ import main
from twilio_e2ee.backend.config import BackendConfig
from twilio_e2ee.credentials import ENV_NAMES
from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[1]


def full_env() -> dict[str, str]:
    key = generate_key_pair().private_key
    return {
        "APP_ID": "a" * 32,
        "APP_KEY": base64.b64encode(key.der).decode(),
        "APP_KEY_ID": key.identifier.hex(),
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_API_KEY_SID": "SK" + "2" * 32,
        "TWILIO_API_SECRET": "s" * 32,
        "TWILIO_SERVICE_SID": "IS" + "3" * 32,
    }


def test_no_env_gives_development_credentials() -> None:
    config = BackendConfig.from_env({})
    assert config.credentials.development and not config.development
    assert BackendConfig.from_env({}, development=True).development


def test_full_env_gives_production_credentials() -> None:
    env = full_env()
    config = BackendConfig.from_env(env, production=True)
    assert not config.credentials.development and not config.development
    assert config.credentials.twilio.service_sid == env["TWILIO_SERVICE_SID"]
    assert config.credentials.virgil.app_key_id == env["APP_KEY_ID"]


def test_partial_env_names_what_is_missing() -> None:
    env = full_env()
    del env["TWILIO_API_SECRET"], env["APP_KEY_ID"]
    with pytest.raises(ConfigurationError) as err:
        BackendConfig.from_env(env)
    assert "missing: APP_KEY_ID, TWILIO_API_SECRET" in str(err.value)


def test_bad_app_key_and_modes_refused() -> None:
    with pytest.raises(ConfigurationError, match="APP_KEY"):
        BackendConfig.from_env({**full_env(), "APP_KEY": "not a key"})
    with pytest.raises(ConfigurationError, match="production mode needs real credentials"):
        BackendConfig.from_env({}, production=True)
    with pytest.raises(ConfigurationError, match="not both"):
        BackendConfig.from_env({}, production=True, development=True)
    with pytest.raises(ConfigurationError, match="TWILIO_API_SECRET"):
        BackendConfig.from_env({**full_env(), "TWILIO_API_SECRET": "short"})
    creds = BackendConfig.from_env({}).credentials
    for bad in ({"twilio_token_ttl": 86401}, {"session_ttl": 0}, {"min_password_length": 0}):
        with pytest.raises(ConfigurationError):
            BackendConfig(creds, **bad)  # type: ignore[arg-type]


def test_main_refuses_bad_setups(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    assert main(["--development", "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err
    assert main(["--production"]) == 2
    assert "production mode needs real credentials" in capsys.readouterr().err
    monkeypatch.setenv("APP_ID", "x")
    assert main([]) == 2
    assert "missing: APP_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--development", "--production"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["module", "script"])
def test_command_serves_and_stops(command: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    exe = [sys.executable, "-m", "twilio_e2ee.backend"]
    if command == "script":
        exe = [str(Path(sys.executable).with_name("twilio-e2ee-backend"))]
        if not Path(exe[0]).exists():
            pytest.skip("console script twilio-e2ee-backend is not installed in this venv")
    args = [*exe, "--port", str(port), "--development", "--db", str(tmp_path / "users.sqlite")]
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"backend did not start: {proc.stdout.read() if proc.stdout else ''}"
                    )
                time.sleep(0.1)
        assert r.json() == {"status": "ok", "mode": "development"}
        r = httpx.post(
            f"http://127.0.0.1:{port}/authenticate", json={"identity": "sample"}, trust_env=False
        )
        assert r.status_code == 200 and r.json()["authToken"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Finished server process" in out
    assert "development mode" in out and "DEVELOPMENT mode" in out
    assert "generated development credentials" in out
    assert (tmp_path / "users.sqlite").exists()
