"""The offline stack: mock Cards + Keyknox, mock Twilio and the token backend on loopback.

All three share one set of development credentials (:func:`generate_development_credentials`
unless given) and one request journal, and run in background threads (``ServerThread``), so a
notebook or a test gets the whole E3Kit-for-Twilio world in-process::

    with OfflineStack() as stack:
        stack.twilio_url, stack.cards_url, stack.backend_url

With ``db_dir`` every service keeps its state in SQLite there, and the credentials are kept in
``credentials.json`` (mode 0600; development secrets only), so a restart loses nothing.
``python -m mock_services`` runs the same stack from a shell.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from mock_services.cards import MockCardsService
from mock_services.journal import Journal
from mock_services.twilio import MockTwilioService
from twilio_e2ee.atomic_file import atomic_write
from twilio_e2ee.backend.app import create_backend_app
from twilio_e2ee.backend.config import BackendConfig
from twilio_e2ee.credentials import (
    StackCredentials,
    TwilioCredentials,
    VirgilAppCredentials,
    generate_development_credentials,
)
from twilio_e2ee.crypto.keys import PublicKey, export_private_key, import_private_key
from twilio_e2ee.errors import ConfigurationError, E2EEError
from twilio_e2ee.servers import ServerThread

__all__ = [
    "CREDENTIALS_FILE",
    "OfflineStack",
    "load_credentials",
    "save_credentials",
    "write_json",
]

CREDENTIALS_FILE = "credentials.json"


def save_credentials(credentials: StackCredentials, path: Path) -> None:
    """Write development credentials as JSON with mode 0600 (atomically)."""
    data = {
        "virgil_app_id": credentials.virgil.app_id,
        "virgil_app_key": base64.b64encode(export_private_key(credentials.virgil.app_key)).decode(),
        "virgil_app_key_id": credentials.virgil.app_key_id,
        "twilio_account_sid": credentials.twilio.account_sid,
        "twilio_api_key_sid": credentials.twilio.api_key_sid,
        "twilio_api_secret": credentials.twilio.api_secret,
        "twilio_conversations_service_sid": credentials.twilio.service_sid,
        "twilio_auth_token": credentials.twilio.auth_token,
        "development": credentials.development,
    }
    write_json(path, data)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically, with mode 0600 (it holds secrets)."""
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)


def load_credentials(path: Path) -> StackCredentials:
    """Read credentials written by :func:`save_credentials` (ConfigurationError if unusable)."""
    try:
        data = json.loads(path.read_text())
        virgil = VirgilAppCredentials(
            app_id=data["virgil_app_id"],
            app_key=import_private_key(data["virgil_app_key"]),
            app_key_id=data["virgil_app_key_id"],
        )
        twilio = TwilioCredentials(
            account_sid=data["twilio_account_sid"],
            api_key_sid=data["twilio_api_key_sid"],
            api_secret=data["twilio_api_secret"],
            service_sid=data["twilio_conversations_service_sid"],
            auth_token=data["twilio_auth_token"],
        )
        return StackCredentials(virgil=virgil, twilio=twilio, development=bool(data["development"]))
    except (OSError, ValueError, KeyError, TypeError, E2EEError) as exc:
        raise ConfigurationError(f"cannot read stack credentials from {path}: {exc}") from None


class OfflineStack:
    """Mock Cards + Keyknox, mock Twilio and the token backend, sharing dev credentials.

    Ports are free ones by default (0) or fixed; ``host`` must be a loopback address.
    ``start()`` is idempotent and ``stop()`` may be called any number of times; the stack can be
    started again after a stop (with ``db_dir``, with all its state).
    """

    def __init__(
        self,
        db_dir: str | Path | None = None,
        *,
        cards_port: int = 0,
        twilio_port: int = 0,
        backend_port: int = 0,
        host: str = "127.0.0.1",
        credentials: StackCredentials | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.db_dir = None if db_dir is None else Path(db_dir)
        self.host = host
        self._ports = {"cards": cards_port, "twilio": twilio_port, "backend": backend_port}
        for name, port in self._ports.items():
            if type(port) is not int or not 0 <= port <= 65535:
                raise ConfigurationError(f"{name}_port must be an int in 0..65535, got {port!r}")
        self.journal = journal if journal is not None else Journal()
        self.credentials = self._credentials(credentials)
        self._cards: MockCardsService | None = None
        self._twilio: MockTwilioService | None = None
        self._backend_app: Starlette | None = None
        self._servers: dict[str, ServerThread] = {}

    def _credentials(self, given: StackCredentials | None) -> StackCredentials:
        if self.db_dir is None:
            return given or generate_development_credentials()
        path = self.db_dir / CREDENTIALS_FILE
        try:
            self.db_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if given is None and path.exists():
                return load_credentials(path)
            credentials = given or generate_development_credentials()
            save_credentials(credentials, path)
        except OSError as exc:
            raise ConfigurationError(f"cannot keep state in {str(self.db_dir)!r}: {exc}") from None
        return credentials

    def _db(self, name: str) -> Path | None:
        return None if self.db_dir is None else self.db_dir / f"{name}.sqlite3"

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._servers) and all(s.running for s in self._servers.values())

    def start(self, timeout: float = 10.0) -> OfflineStack:
        """Create the three services and serve them; returns self (raises ConfigurationError)."""
        if self._servers:
            return self
        creds = self.credentials
        try:
            self._cards = MockCardsService(
                creds.virgil.app_id,
                creds.virgil.app_key_id,
                creds.virgil.app_public_key,
                db_path=self._db("cards"),
                journal=self.journal,
            )
            self._twilio = MockTwilioService(
                creds.twilio, db_path=self._db("twilio"), journal=self.journal
            )
            self._backend_app = create_backend_app(
                BackendConfig(
                    credentials=creds, development=creds.development, db_path=self._db("backend")
                )
            )
            for name, app in (
                ("cards", self._cards.app),
                ("twilio", self._twilio.app),
                ("backend", self._backend_app),
            ):
                server = ServerThread(
                    app, host=self.host, port=self._ports[name], name=f"mock-{name}"
                )
                self._servers[name] = server
                server.start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server and close the stores (safe to call more than once)."""
        servers, self._servers = self._servers, {}
        for server in servers.values():
            server.stop()
        for service in (self._cards, self._twilio):
            if service is not None:
                service.close()
        backend = getattr(getattr(self._backend_app, "state", None), "backend", None)
        database = getattr(backend, "db", None)
        if database is not None:
            database.close()

    def __enter__(self) -> OfflineStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the services (their journals stay readable after stop()) -------------------------

    @staticmethod
    def _not_started() -> ConfigurationError:
        return ConfigurationError("the offline stack is not running: call start() first")

    @property
    def cards(self) -> MockCardsService:
        """The mock Cards + Keyknox service object."""
        if self._cards is None:
            raise self._not_started()
        return self._cards

    @property
    def twilio(self) -> MockTwilioService:
        """The mock Twilio service object (``.journal``, ``.faults``, ``.messages(...)``)."""
        if self._twilio is None:
            raise self._not_started()
        return self._twilio

    @property
    def backend_app(self) -> Starlette:
        """The token backend's Starlette app (``.state.backend``)."""
        if self._backend_app is None:
            raise self._not_started()
        return self._backend_app

    # --- what clients need -----------------------------------------------------------------

    def _url(self, name: str) -> str:
        server = self._servers.get(name)
        if server is None:
            raise self._not_started()
        return server.url

    @property
    def cards_url(self) -> str:
        """Virgil ``apiUrl``: Cards v5 and Keyknox v2 on one base URL."""
        return self._url("cards")

    @property
    def twilio_url(self) -> str:
        """Base URL of the mock Twilio (give it to ``twilio_rest_client(base_url=...)``)."""
        return self._url("twilio")

    @property
    def backend_url(self) -> str:
        return self._url("backend")

    @property
    def cards_service_public_key(self) -> PublicKey:
        """The key that signs cards published to the mock (clients must trust it)."""
        return self.cards.service_public_key

    def urls_dict(self) -> dict[str, Any]:
        """Base URLs and the development credentials a client needs, under explicit keys."""
        creds = self.credentials
        return {
            "cards_url": self.cards_url,
            "virgil_api_url": self.cards_url,
            "twilio_url": self.twilio_url,
            "backend_url": self.backend_url,
            "twilio_account_sid": creds.twilio.account_sid,
            "twilio_auth_token": creds.twilio.auth_token,
            "twilio_api_key_sid": creds.twilio.api_key_sid,
            "twilio_conversations_service_sid": creds.twilio.service_sid,
            "virgil_app_id": creds.virgil.app_id,
            "virgil_app_key_id": creds.virgil.app_key_id,
            "cards_service_public_key": base64.b64encode(
                self.cards_service_public_key.der
            ).decode(),
            "development": creds.development,
        }

    def __repr__(self) -> str:
        if not self._servers:
            return "<OfflineStack stopped>"
        return (
            f"<OfflineStack cards={self.cards_url} twilio={self.twilio_url} "
            f"backend={self.backend_url}>"
        )
