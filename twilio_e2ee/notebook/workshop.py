"""What the notebooks call so that each stays short: services, users, conversations.

``connect()`` picks the services: the offline stack (mock Cards + Keyknox, mock Twilio and the
token backend in this kernel) unless real credentials are in the environment, then real Virgil
and Twilio with the token backend started locally. Everything returned is an ordinary package
object (``BackendClient``, ``EThree``, ``EncryptedConversation``), usable outside notebooks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from twilio_e2ee.backend.client import BackendClient
from twilio_e2ee.chat.conversation import EncryptedConversation, create_conversation
from twilio_e2ee.credentials import StackCredentials, credentials_from_env
from twilio_e2ee.errors import ConfigurationError, E2EEError
from twilio_e2ee.ethree import EThree
from twilio_e2ee.keyknox.backup import Argon2Params
from twilio_e2ee.notebook._base import NotebookError
from twilio_e2ee.notebook.stack import start_stack
from twilio_e2ee.servers import ServerThread
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt
from twilio_e2ee.twilio_http import twilio_rest_client

if TYPE_CHECKING:
    from mock_services.journal import Journal
    from twilio_e2ee.cards.model import Card
    from twilio_e2ee.crypto.keys import PublicKey

__all__ = [
    "DEMO_PASSWORD",
    "FAST_BACKUP",
    "Check",
    "Services",
    "User",
    "check_environment",
    "connect",
]

Mode = Literal["auto", "offline", "real"]

DEMO_PASSWORD = "workshop-password"
# OWASP's floor for Argon2id key backups in notebooks (the library default: t=3, 64 MiB, p=4).
FAST_BACKUP = Argon2Params(time_cost=2, memory_kib=19 * 1024, parallelism=1)

_real_backend: ServerThread | None = None
_users: dict[tuple[str, str], User] = {}  # (backend URL, identity) -> user, for re-run cells
_real_lock = threading.Lock()


@dataclass
class User:
    """One workshop user: a backend session, an E3Kit-style client, and their card."""

    identity: str
    services: Services
    backend: BackendClient | None
    ethree: EThree
    card: Card | None = None

    def conversation(self, conversation_sid: str, **options: Any) -> EncryptedConversation:
        """This user's encrypted view of a Twilio conversation."""
        options.setdefault("service_sid", self.services.conversation_service_sid)
        return EncryptedConversation.from_ethree(
            self.services.twilio_client(), self.ethree, conversation_sid, **options
        )

    def __repr__(self) -> str:
        return f"User({self.identity!r})"


@dataclass
class Services:
    """Where the services are and how to reach them (offline stack or real Virgil/Twilio)."""

    mode: Literal["offline", "real"]
    backend_url: str
    cards_url: str | None  # None: Virgil's production service
    twilio_url: str | None  # None: real Twilio
    credentials: StackCredentials
    cards_service_public_key: PublicKey | None  # None: Virgil's production key
    stack: Any = None
    _twilio: Any = field(default=None, repr=False)

    @property
    def conversation_service_sid(self) -> str | None:
        """Real Twilio: the Conversations service of the chat grant; offline: the default one."""
        return self.credentials.twilio.service_sid if self.mode == "real" else None

    @property
    def twilio_journal(self) -> Journal | None:
        """The offline stack's request journal (entries of every mock; None for real services)."""
        return None if self.stack is None else self.stack.journal

    def directory_entries(self) -> list[Any]:
        """What the mock Cards + Keyknox service saw so far (empty for real services)."""
        journal = self.twilio_journal
        if journal is None:
            return []
        return [e for e in journal.entries if e.service in ("cards", "keyknox")]

    def twilio_client(self) -> Any:
        """A ``twilio.rest.Client`` for the account (redirected to the mock when offline)."""
        if self._twilio is None:
            twilio = self.credentials.twilio
            if twilio.auth_token:
                secret, username = twilio.auth_token, None
            else:
                secret, username = twilio.api_secret, twilio.api_key_sid
            self._twilio = twilio_rest_client(
                twilio.account_sid, secret, username=username, base_url=self.twilio_url
            )
        return self._twilio

    def backend_client(self) -> BackendClient:
        """A fresh client of the token backend (sign up / log in with it)."""
        return BackendClient(self.backend_url)

    def ethree(self, token_callback: Any, **options: Any) -> EThree:
        """An :class:`EThree` pointed at these services."""
        options.setdefault("backup_params", FAST_BACKUP)
        if self.cards_url is not None:
            options.setdefault("api_url", self.cards_url)
        if self.cards_service_public_key is not None:
            options.setdefault("cards_service_public_key", self.cards_service_public_key)
        return EThree(token_callback, **options)

    def user(
        self,
        identity: str,
        *,
        password: str = DEMO_PASSWORD,
        register: bool = True,
        via_backend: bool = True,
        **ethree_options: Any,
    ) -> User:
        """Sign `identity` up (or in) at the backend, create its EThree, and register its card.

        ``via_backend=False`` mints the Virgil JWT directly with the app key instead (what the
        backend does internally; quicker when a notebook needs many users). Asking again for
        the same identity on the same services returns the same user (re-running a cell).
        """
        if not isinstance(identity, str) or not identity.strip():
            raise NotebookError(f"identity must be a non-empty str, not {identity!r}")
        key = (self.backend_url, identity)
        known = _users.get(key)
        if known is not None:
            return known
        backend: BackendClient | None = None
        if via_backend:
            backend = self.backend_client()
            try:
                backend.signup(identity, password)
            except E2EEError:
                backend.login(identity, password)
            callback = backend.virgil_token_callback
        else:
            app = self.credentials.virgil

            def callback() -> str:
                return generate_virgil_jwt(app, identity)

        ethree = self.ethree(callback, **ethree_options)
        user = User(identity, self, backend, ethree)
        if register and not ethree.has_local_private_key():
            user.card = ethree.register()
        _users[key] = user
        return user

    def new_conversation(self, identities: list[str], friendly_name: str | None = None) -> str:
        """Create a Twilio conversation with these participants; returns its SID."""
        if isinstance(identities, str | bytes) or not all(
            isinstance(i, str) and i for i in identities
        ):
            raise NotebookError(f"identities must be a list of non-empty str, not {identities!r}")
        return create_conversation(
            self.twilio_client(),
            identities,
            friendly_name=friendly_name,
            service_sid=self.conversation_service_sid,
        )

    def conversation_resource(self, conversation_sid: str) -> Any:
        """The SDK's context for a conversation (service-scoped for real Twilio)."""
        v1 = self.twilio_client().conversations.v1
        service = self.conversation_service_sid
        root = v1.services(service).conversations if service else v1.conversations
        return root(conversation_sid)


def connect(mode: Mode = "auto") -> Services:
    """The services the notebooks use; re-running it reuses what is already running.

    ``auto`` is ``real`` when the Virgil/Twilio variables (see ``twilio_e2ee.credentials``) are
    set, ``offline`` otherwise.
    """
    if mode not in ("auto", "offline", "real"):
        raise ConfigurationError(f"mode must be 'auto', 'offline' or 'real', not {mode!r}")
    credentials = None
    if mode in ("auto", "real"):
        credentials = credentials_from_env()
        if credentials.development:
            if mode == "real":
                raise ConfigurationError(
                    "real mode needs APP_ID, APP_KEY, APP_KEY_ID, TWILIO_ACCOUNT_SID, "
                    "TWILIO_API_KEY_SID, TWILIO_API_SECRET, TWILIO_SERVICE_SID in the environment"
                )
            credentials = None
    if credentials is None:
        stack = start_stack()
        return Services(
            mode="offline",
            backend_url=stack.backend_url,
            cards_url=stack.cards_url,
            twilio_url=stack.twilio_url,
            credentials=stack.credentials,
            cards_service_public_key=stack.cards_service_public_key,
            stack=stack,
        )
    return Services(
        mode="real",
        backend_url=_start_real_backend(credentials).url,
        cards_url=None,
        twilio_url=None,
        credentials=credentials,
        cards_service_public_key=None,
    )


def _start_real_backend(credentials: StackCredentials) -> ServerThread:
    """The token backend for real services, in this kernel (production mode, users in memory)."""
    global _real_backend
    from twilio_e2ee.backend.app import create_backend_app
    from twilio_e2ee.backend.config import BackendConfig

    with _real_lock:
        if _real_backend is None or not _real_backend.running:
            app = create_backend_app(BackendConfig(credentials=credentials))
            _real_backend = ServerThread(app, name="backend-real").start()
        return _real_backend


@dataclass(frozen=True)
class Check:
    """One line of the environment check."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'✔' if self.ok else '✘'} {self.name}: {self.detail}"


def check_environment() -> list[Check]:
    """Python, the package and its notebook dependencies, and which services will be used."""
    import importlib.metadata as md
    import sys

    checks = [
        Check(
            "Python ≥ 3.11",
            sys.version_info >= (3, 11),
            f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
        )
    ]
    for dist in ("twilio_e2ee", "cryptography", "twilio", "httpx", "uvicorn", "ipywidgets"):
        try:
            checks.append(Check(dist, True, md.version(dist)))
        except md.PackageNotFoundError:
            checks.append(Check(dist, False, "not installed: run `make lab` from the project"))
    try:
        credentials = credentials_from_env()
    except ConfigurationError as exc:
        checks.append(Check("credentials", False, str(exc)))
    else:
        where = "offline stack (no credentials set)" if credentials.development else "real"
        checks.append(Check("services", True, where))
    return checks
