"""AsyncEThree: the asyncio form of :class:`~twilio_e2ee.ethree.EThree`, same methods, awaitable.

It runs the same operations (:mod:`twilio_e2ee.ethree_core`) with httpx's async clients; blocking
local steps (key-store access, Argon2id for backups) run in a worker thread, so the event loop is
never stalled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from twilio_e2ee.cards.client import DEFAULT_API_URL, AsyncCardsClient
from twilio_e2ee.cards.model import Card
from twilio_e2ee.cards.pin_stores import PinStore
from twilio_e2ee.cards.pinning import PinningManager
from twilio_e2ee.cards.verifier import CardVerifier
from twilio_e2ee.crypto.keys import KeyPair, PublicKey
from twilio_e2ee.errors import EThreeError
from twilio_e2ee.ethree import check_callback, make_core
from twilio_e2ee.ethree_core import (
    Blocking,
    CardsCall,
    Effect,
    GetToken,
    KeyknoxCall,
    Moment,
    Op,
    Recipients,
    drive_async,
)
from twilio_e2ee.keyknox.backup import Argon2Params
from twilio_e2ee.keyknox.client import AsyncKeyknoxClient, check_api_url
from twilio_e2ee.storage.base import KeyStore
from twilio_e2ee.tokens.providers import AsyncCachingJwtProvider

__all__ = ["AsyncEThree"]

T = TypeVar("T")


class AsyncEThree:
    """E3Kit's EThree for asyncio. Create with ``await AsyncEThree.initialize(callback, ...)``.

    ``token_callback`` may be a plain or an async zero-argument callable returning a Virgil JWT;
    the other options are those of :class:`~twilio_e2ee.ethree.EThree`.
    """

    def __init__(
        self,
        token_callback: Callable[[], Awaitable[str] | str] | AsyncCachingJwtProvider,
        *,
        api_url: str = DEFAULT_API_URL,
        cards_service_public_key: PublicKey | bytes | str | None = None,
        key_store: KeyStore | None = None,
        pin_store: PinStore | None = None,
        backup_params: Argon2Params | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        if isinstance(token_callback, AsyncCachingJwtProvider):
            self.tokens = token_callback
        else:
            check_callback(token_callback)
            self.tokens = AsyncCachingJwtProvider(token_callback)
        self._core = make_core(key_store, pin_store, backup_params)
        # Everything that can refuse the arguments runs before an HTTP client exists: an
        # AsyncClient cannot be closed from this synchronous constructor, so none may leak.
        check_api_url(api_url)
        verifier = CardVerifier(cards_service_public_key)
        owned = http_client is None
        http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        self._http = http
        self._owns_http = owned
        self.cards = AsyncCardsClient(
            self.tokens, base_url=api_url, verifier=verifier, http_client=http
        )
        self.keyknox = AsyncKeyknoxClient(self.tokens, api_url, http_client=http)

    @classmethod
    async def initialize(
        cls, token_callback: Callable[[], Awaitable[str] | str], **options: Any
    ) -> AsyncEThree:
        """Create the client and learn the identity from a first token (E3Kit's initialize)."""
        self = cls(token_callback, **options)
        await self._run(self._core.resolve_identity())
        return self

    @property
    def identity(self) -> str:
        """The identity (known after ``initialize`` or the first operation)."""
        if self._core.identity is None:
            raise EThreeError("identity not known yet: create with await AsyncEThree.initialize()")
        return self._core.identity

    # --- driver ----------------------------------------------------------------------------

    async def _perform(self, effect: Effect) -> Any:
        if isinstance(effect, CardsCall):
            return await getattr(self.cards, effect.method)(*effect.args, **effect.kwargs)
        if isinstance(effect, KeyknoxCall):
            return await getattr(self.keyknox, effect.method)(**effect.kwargs)
        if isinstance(effect, GetToken):
            return await self.tokens.get_token()
        if isinstance(effect, Blocking):
            return await asyncio.to_thread(effect.fn, *effect.args)
        raise TypeError(f"unknown effect {effect!r}")  # pragma: no cover

    async def _run(self, op: Op[T]) -> T:
        return await drive_async(op, self._perform)

    @property
    def pinning(self) -> PinningManager:
        """Pinned cards and key-change events (``subscribe``, ``acknowledge``)."""
        return self._core.pinning

    @property
    def key_store(self) -> KeyStore:
        return self._core.key_store

    # --- the E3Kit methods (see EThree for each one's contract) ----------------------------

    async def register(self, key_pair: KeyPair | None = None) -> Card:
        """Publish a card for a new key pair and keep the private key here."""
        return await self._run(self._core.register(key_pair))

    async def rotate_private_key(self) -> Card:
        """Publish a new card superseding the current one (no local key allowed)."""
        return await self._run(self._core.rotate_private_key())

    async def unregister(self) -> None:
        """Revoke every card of this identity and delete the local private key."""
        await self._run(self._core.unregister())

    async def cleanup(self) -> None:
        """Delete the local private key."""
        await self._run(self._core.cleanup())

    async def has_local_private_key(self) -> bool:
        """Whether this device holds the private key."""
        return await self._run(self._core.has_local_private_key())

    async def find_users(self, identities: str | Sequence[str]) -> Card | dict[str, Card]:
        """The card of an identity, or ``{identity: card}`` for a list."""
        return await self._run(self._core.find_users(identities))

    def find_cached_users(self, identities: str | Sequence[str]) -> Card | dict[str, Card]:
        """Cards found earlier in this session, without a network call."""
        return self._core.find_cached_users(identities)

    async def auth_encrypt(self, data: str | bytes, recipients: Recipients = None) -> str | bytes:
        """Sign and encrypt (str → base64 str, bytes → bytes)."""
        return await self._run(self._core.auth_encrypt(data, recipients))

    async def auth_decrypt(
        self, data: str | bytes, sender: Card | None = None, encrypted_at: Moment | None = None
    ) -> str | bytes:
        """Decrypt and verify; ``encrypted_at`` for messages from before a rotation."""
        return await self._run(self._core.auth_decrypt(data, sender, encrypted_at))

    async def encrypt(self, data: str | bytes, recipients: Recipients = None) -> str | bytes:
        """Legacy signThenEncrypt."""
        return await self._run(self._core.encrypt(data, recipients))

    async def decrypt(
        self, data: str | bytes, sender: Card | None = None, encrypted_at: Moment | None = None
    ) -> str | bytes:
        """Legacy decryptThenVerify."""
        return await self._run(self._core.decrypt(data, sender, encrypted_at))

    async def backup_private_key(self, password: str, key_name: str | None = None) -> None:
        """Store the private key in Keyknox, encrypted under ``password``."""
        await self._run(self._core.backup_private_key(password, key_name))

    async def restore_private_key(self, password: str, key_name: str | None = None) -> None:
        """Fetch and decrypt the backup onto this device."""
        await self._run(self._core.restore_private_key(password, key_name))

    async def change_password(
        self, old_password: str, new_password: str, key_name: str | None = None
    ) -> None:
        """Re-encrypt the backup under a new password."""
        await self._run(self._core.change_password(old_password, new_password, key_name))

    async def reset_private_key_backup(self, key_name: str | None = None) -> None:
        """Delete the backup."""
        await self._run(self._core.reset_private_key_backup(key_name))

    async def aclose(self) -> None:
        """Close the HTTP connections (if this client created them)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncEThree:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncEThree(identity={self._core.identity!r}, api_url={self.cards.base_url!r})"
