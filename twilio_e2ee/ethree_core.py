"""The logic of EThree without I/O: every operation is a generator of *effects*.

An operation (``register``, ``find_users``, ``backup_private_key``…) never calls the network or
the disk itself. It yields an effect — a Cards or Keyknox call, a token fetch, or a blocking local
step (key-store access, Argon2id) — and is resumed with the result (or the exception, thrown back
in). :class:`~twilio_e2ee.ethree.EThree` performs effects synchronously,
:class:`~twilio_e2ee.ethree_async.AsyncEThree` with ``await`` (blocking steps in a worker
thread), so both share every rule, guard and error message here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from twilio_e2ee import crypto
from twilio_e2ee.cards.errors import CardNotActiveError, CardsNotFoundError, CardsServiceError
from twilio_e2ee.cards.model import Card, card_active_at
from twilio_e2ee.cards.pinning import PinningManager
from twilio_e2ee.crypto.keys import KeyPair, PrivateKey, PublicKey, generate_key_pair
from twilio_e2ee.errors import (
    CryptoError,
    E2EEError,
    IntegrityError,
    KeyEntryNotFoundError,
    NotARecipientError,
    ServiceUnavailableError,
    SignatureError,
)
from twilio_e2ee.ethree_errors import (
    BackupAlreadyExistsError,
    IdentityAlreadyExistsError,
    InvalidArgumentError,
    MissingPrivateKeyError,
    MultipleCardsError,
    PrivateKeyAlreadyExistsError,
    PrivateKeyNoBackupError,
    RegisterInProgressError,
    RegisterRequiredError,
    UsersFoundWithMultipleCardsError,
    UsersNotFoundError,
)
from twilio_e2ee.keyknox.backup import (
    BACKUP_PATH,
    BACKUP_ROOT,
    DEFAULT_KEY_NAME,
    Argon2Params,
    open_backup,
    password_bytes,
    seal_backup,
)
from twilio_e2ee.keyknox.client import KeyknoxValue
from twilio_e2ee.keyknox.errors import KeyknoxEntryNotFoundError
from twilio_e2ee.storage.base import KeyStore
from twilio_e2ee.tokens.providers import token_identity

__all__ = [
    "Blocking",
    "CardsCall",
    "EThreeCore",
    "Effect",
    "GetToken",
    "KeyknoxCall",
    "Op",
    "drive",
    "drive_async",
]

T = TypeVar("T")


@dataclass(frozen=True)
class CardsCall:
    """Call ``method`` of the Cards client (``search_cards``, ``publish_card``, ``get_card``…)."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyknoxCall:
    """Call ``method`` of the Keyknox client (``push``, ``pull``, ``keys``, ``reset``)."""

    method: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GetToken:
    """Fetch the current Virgil JWT (from the caching provider)."""


@dataclass(frozen=True)
class Blocking:
    """Run a local blocking step (key store, Argon2id); async drivers use a worker thread."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


Effect = CardsCall | KeyknoxCall | GetToken | Blocking
Op = Generator[Effect, Any, T]

Recipients = Card | Sequence[Card] | Mapping[str, Card] | None
Moment = datetime | int | float


def _check_text_or_bytes(data: object, what: str) -> None:
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise InvalidArgumentError(
            f"{what}: data must be str (text) or bytes, got {type(data).__name__}"
        )
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(
                f"{what}: the text holds a lone surrogate (not valid Unicode); "
                "fix the string or pass bytes"
            ) from None


def _decode_ciphertext(data: str | bytes, what: str) -> bytes:
    """A str ciphertext is base64 (as E3Kit returns it); bytes are taken as is."""
    if isinstance(data, str):
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgumentError(
                f"{what}: a str ciphertext must be the base64 text auth_encrypt returned "
                "(pass bytes for binary ciphertext)"
            ) from None
        return raw
    return bytes(data)


def _recipient_cards(recipients: Recipients, what: str) -> list[Card]:
    if recipients is None:
        return []
    if isinstance(recipients, Card):
        return [recipients]
    if isinstance(recipients, Mapping):
        cards = list(recipients.values())
    elif isinstance(recipients, (list, tuple)):
        cards = list(recipients)
    else:
        raise InvalidArgumentError(
            f"{what}: recipients must be a Card, a list of Cards or the dict find_users "
            f"returned, got {type(recipients).__name__}"
        )
    if not cards:
        raise InvalidArgumentError(
            f"{what}: the recipient list is empty; pass None to encrypt for yourself only"
        )
    for card in cards:
        if not isinstance(card, Card):
            raise InvalidArgumentError(
                f"{what}: every recipient must be a Card (from find_users), got "
                f"{type(card).__name__}"
            )
    return cards


def _identities(identities: object, what: str) -> tuple[list[str], bool]:
    """One identity (str) or a list of them → (de-duplicated list, was it a single one)."""
    if isinstance(identities, str):
        items: list[object] = [identities]
    elif isinstance(identities, (list, tuple, set, frozenset)):
        items = list(dict.fromkeys(identities))
    else:
        raise InvalidArgumentError(
            f"{what}: pass an identity (str) or a list of identities, got "
            f"{type(identities).__name__}"
        )
    if not items:
        raise InvalidArgumentError(f"{what}: the list of identities is empty")
    wanted: list[str] = []
    for identity in items:
        if not isinstance(identity, str) or not identity:
            raise InvalidArgumentError(
                f"{what}: every identity must be a non-empty str, got {identity!r}"
            )
        wanted.append(identity)
    return wanted, isinstance(identities, str)


def _moment(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(
                "encrypted_at must be timezone-aware (e.g. datetime.now(UTC)) or Unix seconds"
            )
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidArgumentError(
        f"encrypted_at must be a datetime or Unix seconds, got {type(value).__name__}"
    )


def _key_name(key_name: object) -> str:
    if key_name is None:
        return DEFAULT_KEY_NAME
    if not isinstance(key_name, str) or not key_name or len(key_name) > 256:
        raise InvalidArgumentError("key_name must be a non-empty str (at most 256 characters)")
    return key_name


def _password(password: object, what: str = "password") -> bytes:
    try:
        return password_bytes(password)  # type: ignore[arg-type]
    except E2EEError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None


def _with_advice(exc: CryptoError, advice: str) -> CryptoError:
    """The same error type, with a message that says what to do."""
    try:
        return type(exc)(f"{exc}. {advice}")
    except TypeError:  # a subclass with a custom constructor: keep it as is
        return exc


class EThreeCore:
    """State and rules shared by the sync and async clients (one instance per client)."""

    def __init__(
        self,
        *,
        key_store: KeyStore,
        pinning: PinningManager,
        backup_params: Argon2Params | None = None,
    ) -> None:
        self.key_store = key_store
        self.pinning = pinning
        self.backup_params = backup_params or Argon2Params()
        self.identity: str | None = None
        self.cache: dict[str, Card] = {}  # identity -> last verified, pinned card
        self._private_key: PrivateKey | None = None
        self._key_lock = threading.Lock()  # held while register / rotate runs

    # --- building blocks ------------------------------------------------------------------

    def resolve_identity(self) -> Op[str]:
        """Identity from the token: ``sub`` minus ``identity-`` (as E3Kit's initialize)."""
        if self.identity is None:
            token = yield GetToken()
            self.identity = token_identity(token)
        return self.identity

    def _load_private_key(self) -> Op[PrivateKey | None]:
        if self._private_key is not None:
            return self._private_key
        identity = yield from self.resolve_identity()
        try:
            entry = yield Blocking(self.key_store.load, (identity,))
        except KeyEntryNotFoundError:
            return None
        self._private_key = entry.private_key
        return self._private_key

    def _require_private_key(self) -> Op[PrivateKey]:
        key = yield from self._load_private_key()
        if key is None:
            raise MissingPrivateKeyError(self.identity or "?")
        return key

    def _own_cards(self) -> Op[list[Card]]:
        identity = yield from self.resolve_identity()
        cards = yield CardsCall("search_cards", ([identity],))
        return [c for c in cards if c.identity == identity]

    def _save_new_key(self, private_key: PrivateKey) -> Op[None]:
        identity = yield from self.resolve_identity()
        yield Blocking(self.key_store.save, (identity, private_key))
        self._private_key = private_key

    def _remember_own(self, card: Card) -> None:
        self.pinning.acknowledge(card.identity, card)
        self.cache[card.identity] = card

    # --- keys ------------------------------------------------------------------------------

    def has_local_private_key(self) -> Op[bool]:
        """Whether this device holds the identity's private key."""
        if self._private_key is not None:
            return True
        identity = yield from self.resolve_identity()
        exists = yield Blocking(self.key_store.exists, (identity,))
        return bool(exists)

    def register(self, key_pair: KeyPair | None = None) -> Op[Card]:
        """Publish a card for a new (or the given) key pair and keep the private key locally."""
        if key_pair is not None and not isinstance(key_pair, KeyPair):
            raise InvalidArgumentError(
                f"register: key_pair must be a KeyPair (generate_key_pair()), got "
                f"{type(key_pair).__name__}"
            )
        if not self._key_lock.acquire(blocking=False):
            raise RegisterInProgressError()
        try:
            identity = yield from self.resolve_identity()
            cards = yield from self._own_cards()
            if len(cards) > 1:
                raise MultipleCardsError(identity)
            if cards:
                raise IdentityAlreadyExistsError(identity)
            pair = key_pair or generate_key_pair()
            # Key first, card second: if the answer to the publish is lost, the key that
            # matches the (possibly published) card is still on this device.
            yield Blocking(self._replace_local_key, (identity, pair.private_key))
            card = yield from self._publish(pair.private_key, None)
            return card
        finally:
            self._key_lock.release()

    def _publish(self, private_key: PrivateKey, previous_card_id: str | None) -> Op[Card]:
        """Publish the card of a key already saved locally.

        If the service refused the card for sure (a 4xx answer), the new local key is removed
        again; if the outcome is unknown (no answer, 5xx), it is kept: the card may exist.
        """
        try:
            card: Card = yield CardsCall(
                "publish_card", (private_key,), {"previous_card_id": previous_card_id}
            )
        except CardsServiceError as exc:
            if not isinstance(exc, ServiceUnavailableError):
                identity = yield from self.resolve_identity()
                yield Blocking(functools.partial(self.key_store.delete, identity, missing_ok=True))
                self._private_key = None
            raise
        self._remember_own(card)
        return card

    def _replace_local_key(self, identity: str, private_key: PrivateKey) -> None:
        # E3Kit's register replaces a stale local key (there is no card for it any more).
        self.key_store.save(identity, private_key, None, replace=True)
        self._private_key = private_key

    def rotate_private_key(self) -> Op[Card]:
        """Publish a new card that supersedes the current one (the old key is lost or leaked)."""
        if not self._key_lock.acquire(blocking=False):
            raise RegisterInProgressError()
        try:
            identity = yield from self.resolve_identity()
            cards = yield from self._own_cards()
            if not cards:
                raise RegisterRequiredError(identity)
            if len(cards) > 1:
                raise MultipleCardsError(identity)
            if (yield from self.has_local_private_key()):
                raise PrivateKeyAlreadyExistsError(identity)
            pair = generate_key_pair()
            yield from self._save_new_key(pair.private_key)
            card = yield from self._publish(pair.private_key, cards[0].id)
            return card
        finally:
            self._key_lock.release()

    def unregister(self) -> Op[None]:
        """Revoke every card of the identity and delete the local private key."""
        identity = yield from self.resolve_identity()
        cards = yield from self._own_cards()
        if not cards:
            raise RegisterRequiredError(identity)
        for card in cards:
            yield CardsCall("revoke_card", (card.id,))
        yield from self.cleanup()
        self.pinning.forget(identity)
        self.cache.pop(identity, None)

    def cleanup(self) -> Op[None]:
        """Delete the local private key (nothing changes in the cloud)."""
        identity = yield from self.resolve_identity()
        yield Blocking(functools.partial(self.key_store.delete, identity, missing_ok=True))
        self._private_key = None

    # --- users -----------------------------------------------------------------------------

    def find_users(self, identities: str | Sequence[str]) -> Op[Card | dict[str, Card]]:
        """The card of one identity, or ``{identity: card}`` for a list (E3Kit's findUsers)."""
        wanted, single = _identities(identities, "find_users")
        found = yield CardsCall("search_cards", (wanted,))
        by_identity: dict[str, list[Card]] = {}
        for card in found:
            by_identity.setdefault(card.identity, []).append(card)
        multiple = [i for i in wanted if len(by_identity.get(i, [])) > 1]
        if multiple:
            raise UsersFoundWithMultipleCardsError(multiple)
        missing = [i for i in wanted if i not in by_identity]
        if missing:
            raise UsersNotFoundError(missing)
        result = {i: by_identity[i][0] for i in wanted}
        try:
            self.pinning.check_all(result.values())
        finally:
            for identity, card in result.items():
                pinned = self.pinning.pinned(identity)
                if pinned is not None and pinned.id == card.id:
                    self.cache[identity] = card
        return result[wanted[0]] if single else result

    def find_cached_users(self, identities: str | Sequence[str]) -> Card | dict[str, Card]:
        """Cards already found (and pinned) in this session, without asking the service."""
        wanted, single = _identities(identities, "find_cached_users")
        missing = [i for i in wanted if i not in self.cache]
        if missing:
            raise UsersNotFoundError(missing)
        return self.cache[wanted[0]] if single else {i: self.cache[i] for i in wanted}

    # --- messages --------------------------------------------------------------------------

    def _recipient_keys(
        self, recipients: Recipients, own: PrivateKey, what: str
    ) -> list[PublicKey]:
        keys = [card.public_key for card in _recipient_cards(recipients, what)]
        keys.append(own.public_key)  # as E3Kit: the sender can always read what it sent
        return list(dict.fromkeys(keys))

    def auth_encrypt(self, data: str | bytes, recipients: Recipients = None) -> Op[str | bytes]:
        """Sign and encrypt (E3Kit's authEncrypt): str → base64 str, bytes → bytes."""
        _check_text_or_bytes(data, "auth_encrypt")
        own = yield from self._require_private_key()
        keys = self._recipient_keys(recipients, own, "auth_encrypt")
        as_text = isinstance(data, str)
        plaintext = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        message = crypto.auth_encrypt(plaintext, own, keys)
        return base64.b64encode(message).decode("ascii") if as_text else message

    def encrypt(self, data: str | bytes, recipients: Recipients = None) -> Op[str | bytes]:
        """Legacy signThenEncrypt (E3Kit's deprecated encrypt); prefer :meth:`auth_encrypt`."""
        _check_text_or_bytes(data, "encrypt")
        own = yield from self._require_private_key()
        keys = self._recipient_keys(recipients, own, "encrypt")
        as_text = isinstance(data, str)
        plaintext = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        message = crypto.sign_then_encrypt(plaintext, own, keys)
        return base64.b64encode(message).decode("ascii") if as_text else message

    def _sender_keys(
        self, sender: Card | None, own: PrivateKey, when: float | None
    ) -> Op[list[PublicKey]]:
        if sender is None:
            return [own.public_key]
        if not isinstance(sender, Card):
            raise InvalidArgumentError(
                f"sender must be the sender's Card (from find_users), got {type(sender).__name__}"
            )
        if when is None:
            return [sender.public_key]
        # The card active then (E3Kit's getCardActiveAtMoment); created_at has 1 s resolution,
        # so the card active one second earlier is also accepted for messages sent right at a
        # rotation.
        keys: list[PublicKey] = []
        for moment in (when, when - 1):
            card = yield from self._active_at(sender, moment)
            if card is not None and card.public_key not in keys:
                keys.append(card.public_key)
        if not keys:
            raise CardNotActiveError(
                f"no card of {sender.identity!r} was active at {when:.0f}: the message is older "
                "than every card of that user"
            )
        return keys

    def _active_at(self, card: Card, when: float) -> Op[Card | None]:
        current = card
        while current.created_at > when:
            previous = current.previous_card
            if previous is None and current.previous_card_id is not None:
                try:  # the chain was not attached (e.g. a card from get): fetch the predecessor
                    previous = yield CardsCall("get_card", (current.previous_card_id,))
                except CardsNotFoundError:
                    previous = None
                if previous is not None and previous.identity != card.identity:
                    previous = None
            if previous is None:
                return None
            current = previous
        try:
            return card_active_at(current, when)
        except CardNotActiveError:
            return None

    def _decrypt(
        self,
        data: str | bytes,
        sender: Card | None,
        encrypted_at: Moment | None,
        what: str,
        decrypt: Callable[[bytes, PrivateKey, list[PublicKey]], bytes],
    ) -> Op[str | bytes]:
        _check_text_or_bytes(data, what)
        when = _moment(encrypted_at)
        message = _decode_ciphertext(data, what)
        own = yield from self._require_private_key()
        signers = yield from self._sender_keys(sender, own, when)
        try:
            plaintext = decrypt(message, own, signers)
        except NotARecipientError as exc:
            raise _with_advice(
                exc,
                "This message was not encrypted for this device's current key (sent to someone "
                "else, or before a key rotation of yours)",
            ) from exc
        except SignatureError as exc:
            raise _with_advice(
                exc,
                "The sender's signature does not verify: pass the sender's card, and "
                "encrypted_at for messages sent before the sender rotated its key",
            ) from exc
        except IntegrityError as exc:
            raise _with_advice(exc, "The message was modified or damaged in transit") from exc
        if isinstance(data, str):
            try:
                return plaintext.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidArgumentError(
                    f"{what}: the plaintext is binary, not UTF-8 text; pass the ciphertext as "
                    "bytes to get bytes back"
                ) from None
        return plaintext

    def auth_decrypt(
        self,
        data: str | bytes,
        sender: Card | None = None,
        encrypted_at: Moment | None = None,
    ) -> Op[str | bytes]:
        """Decrypt and verify (E3Kit's authDecrypt); ``sender`` None means yourself."""
        return (
            yield from self._decrypt(
                data, sender, encrypted_at, "auth_decrypt", crypto.auth_decrypt
            )
        )

    def decrypt(
        self,
        data: str | bytes,
        sender: Card | None = None,
        encrypted_at: Moment | None = None,
    ) -> Op[str | bytes]:
        """Legacy decryptThenVerify (E3Kit's deprecated decrypt)."""
        return (
            yield from self._decrypt(
                data, sender, encrypted_at, "decrypt", crypto.decrypt_then_verify
            )
        )

    # --- backups ---------------------------------------------------------------------------

    def _location(self, identity: str, key_name: str) -> dict[str, str]:
        return {"root": BACKUP_ROOT, "path": BACKUP_PATH, "key": key_name, "identity": identity}

    def _pull_backup(self, key_name: str) -> Op[KeyknoxValue]:
        identity = yield from self.resolve_identity()
        try:
            value: KeyknoxValue = yield KeyknoxCall("pull", self._location(identity, key_name))
        except KeyknoxEntryNotFoundError:
            return KeyknoxValue(identity, BACKUP_ROOT, BACKUP_PATH, key_name, (), b"", b"", None)
        return value

    def backup_private_key(self, password: str, key_name: str | None = None) -> Op[None]:
        """Encrypt the local private key under ``password`` and store it in Keyknox."""
        secret = _password(password)
        name = _key_name(key_name)
        identity = yield from self.resolve_identity()
        own = yield from self._require_private_key()
        existing = yield from self._pull_backup(name)
        if not existing.is_empty:
            raise BackupAlreadyExistsError(identity, name)
        blob = yield Blocking(self._seal, (own, secret, identity, name))
        yield KeyknoxCall(
            "push",
            {
                "root": BACKUP_ROOT,
                "path": BACKUP_PATH,
                "key": name,
                "identities": [identity],
                "meta": blob.meta,
                "value": blob.value,
                "previous_hash": existing.keyknox_hash,
            },
        )

    def _seal(self, key: PrivateKey, secret: bytes, identity: str, name: str) -> Any:
        return seal_backup(key, secret, identity=identity, key_name=name, params=self.backup_params)

    def restore_private_key(self, password: str, key_name: str | None = None) -> Op[None]:
        """Fetch the backup, decrypt it with ``password`` and keep the key on this device."""
        secret = _password(password)
        name = _key_name(key_name)
        identity = yield from self.resolve_identity()
        if (yield from self.has_local_private_key()):
            raise PrivateKeyAlreadyExistsError(identity)
        stored = yield from self._pull_backup(name)
        if stored.is_empty:
            raise PrivateKeyNoBackupError(identity, name)
        key = yield Blocking(
            lambda: open_backup(stored.meta, stored.value, secret, identity=identity, key_name=name)
        )
        yield Blocking(self.key_store.save, (identity, key))
        self._private_key = key

    def change_password(
        self, old_password: str, new_password: str, key_name: str | None = None
    ) -> Op[None]:
        """Re-encrypt the backup under ``new_password`` (fresh salt)."""
        old_secret = _password(old_password, "old_password")
        new_secret = _password(new_password, "new_password")
        name = _key_name(key_name)
        identity = yield from self.resolve_identity()
        stored = yield from self._pull_backup(name)
        if stored.is_empty:
            raise PrivateKeyNoBackupError(identity, name)
        key = yield Blocking(
            lambda: open_backup(
                stored.meta, stored.value, old_secret, identity=identity, key_name=name
            )
        )
        blob = yield Blocking(self._seal, (key, new_secret, identity, name))
        yield KeyknoxCall(
            "push",
            {
                "root": BACKUP_ROOT,
                "path": BACKUP_PATH,
                "key": name,
                "identities": [identity],
                "meta": blob.meta,
                "value": blob.value,
                "previous_hash": stored.keyknox_hash,
            },
        )

    def reset_private_key_backup(self, key_name: str | None = None) -> Op[None]:
        """Delete the backup stored under ``key_name`` (default: the default backup)."""
        name = _key_name(key_name)
        identity = yield from self.resolve_identity()
        stored = yield from self._pull_backup(name)
        if stored.is_empty:
            raise PrivateKeyNoBackupError(identity, name)
        yield KeyknoxCall("reset", self._location(identity, name))


def drive(op: Op[T], perform: Callable[[Effect], Any]) -> T:
    """Run an operation, performing each effect synchronously."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            value = perform(effect)
        except BaseException as exc:  # thrown back into the operation (its finally runs)
            error = exc


async def drive_async(op: Op[T], perform: Callable[[Effect], Awaitable[Any]]) -> T:
    """Run an operation, awaiting each effect."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            value = await perform(effect)
        except BaseException as exc:
            error = exc
