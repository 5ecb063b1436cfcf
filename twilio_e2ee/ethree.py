"""EThree: the E3Kit-style client, the package's front door (synchronous form).

The class keeps E3Kit's name, ``EThree``, and its methods in snake_case, so code from Virgil's
"End-to-End Encryption for Twilio" guide translates line by line::

    eThree = await EThree.initialize(getToken)          // JS
    await eThree.register()
    const cards = await eThree.findUsers(['bob'])
    const text = await eThree.authEncrypt('hi', cards)

    ethree = EThree(get_token)                           # Python
    ethree.register()
    cards = ethree.find_users(["bob"])
    text = ethree.auth_encrypt("hi", cards)

Differences from E3Kit, on purpose: cards are always verified against the Cards service key
(``cards_service_public_key``; Virgil's by default, never switched off because the URL is not
Virgil's); users' cards are pinned on first use and a key change raises ``KeyChangedError``;
password backups use Argon2id instead of Virgil's Pythia service (see :mod:`twilio_e2ee.keyknox`);
the private key is stored by a :class:`~twilio_e2ee.storage.KeyStore` of your choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx

from twilio_e2ee.cards.client import DEFAULT_API_URL, CardsClient
from twilio_e2ee.cards.model import Card
from twilio_e2ee.cards.pin_stores import PinStore
from twilio_e2ee.cards.pinning import PinningManager
from twilio_e2ee.crypto.keys import KeyPair, PublicKey
from twilio_e2ee.ethree_core import (
    Blocking,
    CardsCall,
    Effect,
    EThreeCore,
    GetToken,
    KeyknoxCall,
    Moment,
    Op,
    Recipients,
    drive,
)
from twilio_e2ee.ethree_errors import (
    BackupAlreadyExistsError,
    IdentityAlreadyExistsError,
    InvalidArgumentError,
    MissingPrivateKeyError,
    MultipleCardsError,
    PrivateKeyAlreadyExistsError,
    PrivateKeyNoBackupError,
    PythiaBackupNotSupportedError,
    RegisterInProgressError,
    RegisterRequiredError,
    UsersFoundWithMultipleCardsError,
    UsersNotFoundError,
    WrongKeyknoxPasswordError,
)
from twilio_e2ee.keyknox.backup import Argon2Params
from twilio_e2ee.keyknox.client import KeyknoxClient
from twilio_e2ee.storage.base import KeyStore
from twilio_e2ee.storage.memory import MemoryKeyStore
from twilio_e2ee.tokens.providers import CachingJwtProvider

__all__ = [
    "BackupAlreadyExistsError",
    "EThree",
    "IdentityAlreadyExistsError",
    "InvalidArgumentError",
    "MissingPrivateKeyError",
    "MultipleCardsError",
    "PrivateKeyAlreadyExistsError",
    "PrivateKeyNoBackupError",
    "PythiaBackupNotSupportedError",
    "RegisterInProgressError",
    "RegisterRequiredError",
    "UsersFoundWithMultipleCardsError",
    "UsersNotFoundError",
    "WrongKeyknoxPasswordError",
]

T = TypeVar("T")


def make_core(
    key_store: KeyStore | None, pin_store: PinStore | None, backup_params: Argon2Params | None
) -> EThreeCore:
    """The shared core, with argument checks common to both clients."""
    if key_store is not None and not isinstance(key_store, KeyStore):
        raise InvalidArgumentError(
            "key_store must implement twilio_e2ee.storage.KeyStore (e.g. MemoryKeyStore, "
            "EncryptedFileKeyStore)"
        )
    if backup_params is not None and not isinstance(backup_params, Argon2Params):
        raise InvalidArgumentError("backup_params must be twilio_e2ee.keyknox.Argon2Params")
    return EThreeCore(
        key_store=MemoryKeyStore() if key_store is None else key_store,
        pinning=PinningManager(pin_store),
        backup_params=backup_params,
    )


def check_callback(token_callback: object) -> None:
    if not callable(token_callback):
        raise InvalidArgumentError(
            "token_callback must be a zero-argument callable returning a Virgil JWT (E3Kit's "
            f"tokenCallback), got {type(token_callback).__name__}"
        )


class EThree:
    """E3Kit's EThree in Python (synchronous; see :class:`~twilio_e2ee.ethree_async.AsyncEThree`).

    The name is E3Kit's on purpose: readers of Virgil's guide find the class, its methods
    (snake_case) and its error names where they expect them.

    Args:
        token_callback: zero-argument callable returning a Virgil JWT (E3Kit's ``tokenCallback``),
            e.g. ``BackendClient.fetch_virgil_jwt``; wrapped in a caching provider (or pass a
            ``CachingJwtProvider``). The identity is the token's ``sub`` minus ``identity-``.
        api_url: base URL of the Cards and Keyknox services (E3Kit's ``apiUrl``).
        cards_service_public_key: the key the Cards service signs cards with; Virgil's by
            default. The bundled mock has its own (``OfflineStack.cards_service_public_key``).
        key_store: where the private key lives; default :class:`MemoryKeyStore`, which forgets
            it when the process exits — use ``EncryptedFileKeyStore`` or ``KeyringKeyStore``
            (and ``backup_private_key``) for real users.
        pin_store: where pinned cards live (default: memory).
        backup_params: Argon2id cost of password backups (default t=3, 64 MiB, p=4).
    """

    def __init__(
        self,
        token_callback: Callable[[], str] | CachingJwtProvider,
        *,
        api_url: str = DEFAULT_API_URL,
        cards_service_public_key: PublicKey | bytes | str | None = None,
        key_store: KeyStore | None = None,
        pin_store: PinStore | None = None,
        backup_params: Argon2Params | None = None,
        http_client: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        if isinstance(token_callback, CachingJwtProvider):
            self.tokens = token_callback
        else:
            check_callback(token_callback)
            self.tokens = CachingJwtProvider(token_callback)
        self._core = make_core(key_store, pin_store, backup_params)
        # The identity first (E3Kit's initialize fetches a token): a bad callback fails here.
        self.identity: str = self._run(self._core.resolve_identity())
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None
        try:
            self.cards = CardsClient(
                self.tokens,
                base_url=api_url,
                service_public_key=cards_service_public_key,
                http_client=self._http,
            )
            self.keyknox = KeyknoxClient(self.tokens, api_url, http_client=self._http)
        except BaseException:
            self.close()
            raise

    @classmethod
    def initialize(cls, token_callback: Callable[[], str], **options: Any) -> EThree:
        """E3Kit's ``EThree.initialize(tokenCallback, options)``; same as the constructor."""
        return cls(token_callback, **options)

    # --- driver ----------------------------------------------------------------------------

    def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, CardsCall):
            return getattr(self.cards, effect.method)(*effect.args, **effect.kwargs)
        if isinstance(effect, KeyknoxCall):
            return getattr(self.keyknox, effect.method)(**effect.kwargs)
        if isinstance(effect, GetToken):
            return self.tokens.get_token()
        if isinstance(effect, Blocking):
            return effect.fn(*effect.args)
        raise TypeError(f"unknown effect {effect!r}")  # pragma: no cover

    def _run(self, op: Op[T]) -> T:
        return drive(op, self._perform)

    # --- state -----------------------------------------------------------------------------

    @property
    def pinning(self) -> PinningManager:
        """Pinned cards and key-change events (``subscribe``, ``acknowledge``)."""
        return self._core.pinning

    @property
    def key_store(self) -> KeyStore:
        return self._core.key_store

    # --- keys ------------------------------------------------------------------------------

    def register(self, key_pair: KeyPair | None = None) -> Card:
        """Publish a card for a new key pair (or ``key_pair``) and keep the private key here.

        Raises IdentityAlreadyExistsError / MultipleCardsError if the identity has a card, and
        RegisterInProgressError if called while another register/rotate runs on this client.
        """
        return self._run(self._core.register(key_pair))

    def rotate_private_key(self) -> Card:
        """Replace a lost key: publish a new card superseding the current one.

        Needs exactly one card and no local key (PrivateKeyAlreadyExistsError otherwise).
        """
        return self._run(self._core.rotate_private_key())

    def unregister(self) -> None:
        """Revoke every card of this identity and delete the local private key."""
        self._run(self._core.unregister())

    def cleanup(self) -> None:
        """Delete the local private key (cards and backups stay)."""
        self._run(self._core.cleanup())

    def has_local_private_key(self) -> bool:
        """Whether this device holds the private key."""
        return self._run(self._core.has_local_private_key())

    # --- users -----------------------------------------------------------------------------

    def find_users(self, identities: str | Sequence[str]) -> Card | dict[str, Card]:
        """The verified, pinned card of an identity, or ``{identity: card}`` for a list.

        Raises UsersNotFoundError / UsersFoundWithMultipleCardsError (``.identities``) and
        KeyChangedError when a card changed since it was pinned.
        """
        return self._run(self._core.find_users(identities))

    def find_cached_users(self, identities: str | Sequence[str]) -> Card | dict[str, Card]:
        """Cards found earlier in this session, without a network call."""
        return self._core.find_cached_users(identities)

    # --- messages --------------------------------------------------------------------------

    def auth_encrypt(self, data: str | bytes, recipients: Recipients = None) -> str | bytes:
        """Sign and encrypt for the recipients' cards and yourself (E3Kit's authEncrypt).

        ``str`` in → base64 ``str`` out; ``bytes`` in → ``bytes`` out.
        """
        return self._run(self._core.auth_encrypt(data, recipients))

    def auth_decrypt(
        self, data: str | bytes, sender: Card | None = None, encrypted_at: Moment | None = None
    ) -> str | bytes:
        """Decrypt and verify the sender's signature (E3Kit's authDecrypt).

        ``sender`` is the sender's card (None: yourself). ``encrypted_at`` (datetime or Unix
        seconds) picks the card active then, for messages sent before the sender rotated keys.
        """
        return self._run(self._core.auth_decrypt(data, sender, encrypted_at))

    def encrypt(self, data: str | bytes, recipients: Recipients = None) -> str | bytes:
        """Legacy E3Kit ``encrypt`` (signThenEncrypt: the signature is not encrypted)."""
        return self._run(self._core.encrypt(data, recipients))

    def decrypt(
        self, data: str | bytes, sender: Card | None = None, encrypted_at: Moment | None = None
    ) -> str | bytes:
        """Legacy E3Kit ``decrypt`` (decryptThenVerify), to read old E3Kit messages."""
        return self._run(self._core.decrypt(data, sender, encrypted_at))

    # --- backups ---------------------------------------------------------------------------

    def backup_private_key(self, password: str, key_name: str | None = None) -> None:
        """Store the private key in Keyknox, encrypted under ``password`` (Argon2id)."""
        self._run(self._core.backup_private_key(password, key_name))

    def restore_private_key(self, password: str, key_name: str | None = None) -> None:
        """Fetch and decrypt the backup onto this device (WrongKeyknoxPasswordError if wrong)."""
        self._run(self._core.restore_private_key(password, key_name))

    def change_password(
        self, old_password: str, new_password: str, key_name: str | None = None
    ) -> None:
        """Re-encrypt the backup under a new password."""
        self._run(self._core.change_password(old_password, new_password, key_name))

    def reset_private_key_backup(self, key_name: str | None = None) -> None:
        """Delete the backup (PrivateKeyNoBackupError if there is none)."""
        self._run(self._core.reset_private_key_backup(key_name))

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (if this client created them)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> EThree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EThree(identity={self.identity!r}, api_url={self.cards.base_url!r})"
