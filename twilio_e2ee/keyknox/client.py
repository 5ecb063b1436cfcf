"""Keyknox v2 client: push, pull, keys and reset over httpx, sync and async.

Keyknox is Virgil's store for small encrypted blobs, namespaced as ``owner/root/path/key``. Each
entry holds ``meta`` and ``value`` (opaque bytes, base64 on the wire) and a list of ``identities``
allowed to read it. Writes use optimistic concurrency: every answer carries a
``Virgil-Keyknox-Hash`` header, and the next push must send it back as
``Virgil-Keyknox-Previous-Hash``; a stale hash is refused with code 50010
(:class:`KeyknoxHashMismatchError`).

The protocol (request building, answer parsing, error mapping) is sans-I/O in this module's
functions; :class:`KeyknoxClient` and :class:`AsyncKeyknoxClient` only move bytes and fetch tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from twilio_e2ee.cards.protocol import virgil_agent
from twilio_e2ee.errors import MalformedInputError
from twilio_e2ee.keyknox.errors import (
    CODE_INVALID_PREVIOUS_HASH,
    CODE_NO_KEY_DATA,
    CODE_TOKEN_EXPIRED,
    KeyknoxAuthenticationError,
    KeyknoxEntryNotFoundError,
    KeyknoxError,
    KeyknoxHashMismatchError,
    KeyknoxUnavailableError,
)

__all__ = [
    "DEFAULT_API_URL",
    "AsyncKeyknoxClient",
    "AsyncTokenSource",
    "KeyknoxClient",
    "KeyknoxRequest",
    "KeyknoxValue",
    "TokenSource",
    "build_keys",
    "build_pull",
    "build_push",
    "build_reset",
    "check_api_url",
    "parse_keys",
    "parse_reset",
    "parse_value",
]

DEFAULT_API_URL = "https://api.virgilsecurity.com"
HASH_HEADER = "Virgil-Keyknox-Hash"
PREVIOUS_HASH_HEADER = "Virgil-Keyknox-Previous-Hash"
MAX_NAME_LENGTH = 1024

T = TypeVar("T")


class TokenSource(Protocol):
    """What the client needs from a token provider (e.g. ``CachingJwtProvider``)."""

    def get_token(self, *, force_reload: bool = False) -> object: ...


class AsyncTokenSource(Protocol):
    """The async form of :class:`TokenSource` (e.g. ``AsyncCachingJwtProvider``)."""

    def get_token(self, *, force_reload: bool = False) -> Awaitable[object]: ...


@dataclass(frozen=True)
class KeyknoxValue:
    """One Keyknox v2 entry as the service returned it (``meta``/``value`` still encrypted)."""

    owner: str
    root: str
    path: str
    key: str
    identities: tuple[str, ...]
    meta: bytes = field(repr=False)
    value: bytes = field(repr=False)
    keyknox_hash: str | None

    @property
    def is_empty(self) -> bool:
        """True when nothing is stored (Virgil answers a missing entry with empty meta/value)."""
        return not self.meta and not self.value


@dataclass(frozen=True)
class KeyknoxRequest:
    """One Keyknox call: ``POST <path>`` with a JSON body, and the previous hash if any."""

    path: str
    body: dict[str, Any]
    previous_hash: str | None = None

    def headers(self, token: str, agent: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Virgil {token}",
            "Virgil-Agent": agent or virgil_agent(),
            "Content-Type": "application/json",
        }
        if self.previous_hash:
            headers[PREVIOUS_HASH_HEADER] = self.previous_hash
        return headers

    def content(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


# --- request building (sans-I/O) -----------------------------------------------------------------


def _name(value: object, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise MalformedInputError(f"Keyknox {what} must be a str, got {type(value).__name__}")
    if not value or len(value) > MAX_NAME_LENGTH:
        raise MalformedInputError(f"Keyknox {what} must be 1..{MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 0x20 for ch in value):
        raise MalformedInputError(f"Keyknox {what} must not contain control characters")
    return value


def _blob(value: object, what: str) -> str:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise MalformedInputError(f"Keyknox {what} must be bytes, got {type(value).__name__}")
    return base64.b64encode(bytes(value)).decode()


def build_push(
    *,
    root: str,
    path: str,
    key: str,
    identities: Sequence[str],
    meta: bytes,
    value: bytes,
    previous_hash: str | None = None,
) -> KeyknoxRequest:
    """``POST /keyknox/v2/push``: store meta/value, readable by ``identities``."""
    if isinstance(identities, str) or not isinstance(identities, Sequence) or not identities:
        raise MalformedInputError("Keyknox identities must be a non-empty list of identities")
    body = {
        "root": _name(root, "root"),
        "path": _name(path, "path"),
        "key": _name(key, "key"),
        "identities": [_name(i, "identity") for i in identities],
        "meta": _blob(meta, "meta"),
        "value": _blob(value, "value"),
    }
    if previous_hash is not None and not isinstance(previous_hash, str):
        raise MalformedInputError("Keyknox previous hash must be the str a pull returned")
    return KeyknoxRequest("/keyknox/v2/push", body, previous_hash or None)


def _optional_body(**fields: object) -> dict[str, Any]:
    return {k: _name(v, k, optional=True) for k, v in fields.items() if v is not None}


def build_pull(*, root: str, path: str, key: str, identity: str | None = None) -> KeyknoxRequest:
    """``POST /keyknox/v2/pull``: read an entry of ``identity``'s namespace (default: our own)."""
    body = {"root": _name(root, "root"), "path": _name(path, "path"), "key": _name(key, "key")}
    body.update(_optional_body(identity=identity))
    return KeyknoxRequest("/keyknox/v2/pull", body)


def build_keys(
    *, root: str | None = None, path: str | None = None, identity: str | None = None
) -> KeyknoxRequest:
    """``POST /keyknox/v2/keys``: list key names under root/path."""
    body = _optional_body(root=root, path=path, identity=identity)
    return KeyknoxRequest("/keyknox/v2/keys", body)


def build_reset(
    *,
    root: str | None = None,
    path: str | None = None,
    key: str | None = None,
    identity: str | None = None,
) -> KeyknoxRequest:
    """``POST /keyknox/v2/reset``: delete an entry (or everything under root/path)."""
    body = _optional_body(root=root, path=path, key=key, identity=identity)
    return KeyknoxRequest("/keyknox/v2/reset", body)


# --- answer parsing (sans-I/O) -------------------------------------------------------------------


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None


def is_token_expired(status: int, content: bytes) -> bool:
    """True for Virgil's expired-token answer (code 20304), worth one retry with a fresh token."""
    data = _json(content)
    return status == 401 and isinstance(data, dict) and data.get("code") == CODE_TOKEN_EXPIRED


def check_response(status: int, content: bytes) -> None:
    """Raise the typed error for a non-2xx Keyknox answer (Virgil's ``{code, message}`` body)."""
    if 200 <= status < 300:
        return
    data = _json(content)
    code = data.get("code") if isinstance(data, dict) else None
    code = code if isinstance(code, int) else None
    message = data.get("message") if isinstance(data, dict) else None
    text = f"Keyknox answered {status}" + (f" (code {code}): {message}" if message else "")
    if code == CODE_INVALID_PREVIOUS_HASH:
        raise KeyknoxHashMismatchError(
            text + "; the entry changed since it was pulled: pull it again and retry",
            status=status,
            code=code,
        )
    if code == CODE_NO_KEY_DATA or status == 404:
        raise KeyknoxEntryNotFoundError(text, status=status, code=code)
    if status in (401, 403):
        raise KeyknoxAuthenticationError(
            text + "; check the token callback (Virgil JWT) and the service URL",
            status=status,
            code=code,
        )
    if status == 429 or status >= 500:
        raise KeyknoxUnavailableError(text + "; try again later", status=status, code=code)
    raise KeyknoxError(text, status=status, code=code)


def _field_str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise KeyknoxError(f"Keyknox answer: {name!r} is not a string")
    return value


def _field_b64(data: Mapping[str, Any], name: str) -> bytes:
    text = _field_str(data, name)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyknoxError(f"Keyknox answer: {name!r} is not base64") from None


def parse_value(status: int, headers: Mapping[str, str], content: bytes) -> KeyknoxValue:
    """Parse a push/pull/reset answer into a :class:`KeyknoxValue` (raises on error answers)."""
    check_response(status, content)
    data = _json(content)
    if not isinstance(data, dict):
        raise KeyknoxError(f"Keyknox answer is not a JSON object (status {status})", status=status)
    identities = data.get("identities") or []
    if not isinstance(identities, list) or not all(isinstance(i, str) for i in identities):
        raise KeyknoxError("Keyknox answer: 'identities' is not a list of strings")
    hash_value = next((v for k, v in headers.items() if k.lower() == HASH_HEADER.lower()), None)
    return KeyknoxValue(
        owner=_field_str(data, "owner"),
        root=_field_str(data, "root"),
        path=_field_str(data, "path"),
        key=_field_str(data, "key"),
        identities=tuple(identities),
        meta=_field_b64(data, "meta"),
        value=_field_b64(data, "value"),
        keyknox_hash=hash_value or None,
    )


def parse_reset(status: int, headers: Mapping[str, str], content: bytes) -> None:
    """Check a ``/reset`` answer (its body, if any, carries nothing the client needs)."""
    check_response(status, content)


def parse_keys(status: int, headers: Mapping[str, str], content: bytes) -> list[str]:
    """Parse a ``/keys`` answer: a JSON list of key names."""
    check_response(status, content)
    data = _json(content)
    if not isinstance(data, list) or not all(isinstance(k, str) for k in data):
        raise KeyknoxError("Keyknox /keys answer is not a list of strings", status=status)
    return list(data)


# --- I/O drivers ---------------------------------------------------------------------------------

Parser = Callable[[int, Mapping[str, str], bytes], T]


def _token_text(token: object) -> str:
    raw = getattr(token, "raw", token)  # a parsed JWT object, or the JWT string itself
    if not isinstance(raw, str):
        raise KeyknoxAuthenticationError(
            f"the token provider returned {type(token).__name__}, expected a Virgil JWT string"
        )
    if not raw or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise KeyknoxAuthenticationError(
            "the token provider returned an empty or non-JWT string (a Virgil JWT is printable "
            "ASCII without spaces); check the token callback"
        )
    return raw


def check_api_url(api_url: str) -> str:
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        raise MalformedInputError(f"api_url must be an http(s) URL, got {api_url!r}")
    return api_url.rstrip("/")


class KeyknoxClient:
    """Synchronous Keyknox v2 client (httpx). Tokens come from a :class:`TokenSource`."""

    def __init__(
        self,
        token_provider: TokenSource,
        api_url: str = DEFAULT_API_URL,
        *,
        http_client: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._tokens = token_provider
        self.api_url = check_api_url(api_url)
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None

    def _send(self, request: KeyknoxRequest, parse: Parser[T]) -> T:
        token = _token_text(self._tokens.get_token())
        response = self._post(request, token)
        if is_token_expired(response.status_code, response.content):
            token = _token_text(self._tokens.get_token(force_reload=True))
            response = self._post(request, token)
        return parse(response.status_code, response.headers, response.content)

    def _post(self, request: KeyknoxRequest, token: str) -> httpx.Response:
        try:
            return self._http.post(
                self.api_url + request.path,
                content=request.content(),
                headers=request.headers(token),
            )
        except httpx.HTTPError as exc:
            raise KeyknoxUnavailableError(f"cannot reach Keyknox at {self.api_url}: {exc}") from exc

    def push(
        self,
        *,
        root: str,
        path: str,
        key: str,
        identities: Sequence[str],
        meta: bytes,
        value: bytes,
        previous_hash: str | None = None,
    ) -> KeyknoxValue:
        """Store an entry; pass the hash of the last pull as ``previous_hash`` to overwrite."""
        request = build_push(
            root=root,
            path=path,
            key=key,
            identities=identities,
            meta=meta,
            value=value,
            previous_hash=previous_hash,
        )
        return self._send(request, parse_value)

    def pull(self, *, root: str, path: str, key: str, identity: str | None = None) -> KeyknoxValue:
        """Read an entry (empty when absent); ``identity`` is the owner's namespace to read."""
        return self._send(build_pull(root=root, path=path, key=key, identity=identity), parse_value)

    def keys(
        self, *, root: str | None = None, path: str | None = None, identity: str | None = None
    ) -> list[str]:
        """List the key names stored under root/path."""
        return self._send(build_keys(root=root, path=path, identity=identity), parse_keys)

    def reset(
        self,
        *,
        root: str | None = None,
        path: str | None = None,
        key: str | None = None,
        identity: str | None = None,
    ) -> None:
        """Delete an entry (or everything under root/path)."""
        request = build_reset(root=root, path=path, key=key, identity=identity)
        self._send(request, parse_reset)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> KeyknoxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncKeyknoxClient:
    """Asynchronous Keyknox v2 client (httpx); same methods as :class:`KeyknoxClient`."""

    def __init__(
        self,
        token_provider: AsyncTokenSource,
        api_url: str = DEFAULT_API_URL,
        *,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._tokens = token_provider
        self.api_url = check_api_url(api_url)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None

    async def _send(self, request: KeyknoxRequest, parse: Parser[T]) -> T:
        token = _token_text(await self._tokens.get_token())
        response = await self._post(request, token)
        if is_token_expired(response.status_code, response.content):
            token = _token_text(await self._tokens.get_token(force_reload=True))
            response = await self._post(request, token)
        return parse(response.status_code, response.headers, response.content)

    async def _post(self, request: KeyknoxRequest, token: str) -> httpx.Response:
        try:
            return await self._http.post(
                self.api_url + request.path,
                content=request.content(),
                headers=request.headers(token),
            )
        except httpx.HTTPError as exc:
            raise KeyknoxUnavailableError(f"cannot reach Keyknox at {self.api_url}: {exc}") from exc

    async def push(
        self,
        *,
        root: str,
        path: str,
        key: str,
        identities: Sequence[str],
        meta: bytes,
        value: bytes,
        previous_hash: str | None = None,
    ) -> KeyknoxValue:
        """Store an entry; pass the hash of the last pull as ``previous_hash`` to overwrite."""
        request = build_push(
            root=root,
            path=path,
            key=key,
            identities=identities,
            meta=meta,
            value=value,
            previous_hash=previous_hash,
        )
        return await self._send(request, parse_value)

    async def pull(
        self, *, root: str, path: str, key: str, identity: str | None = None
    ) -> KeyknoxValue:
        """Read an entry (empty when absent); ``identity`` is the owner's namespace to read."""
        request = build_pull(root=root, path=path, key=key, identity=identity)
        return await self._send(request, parse_value)

    async def keys(
        self, *, root: str | None = None, path: str | None = None, identity: str | None = None
    ) -> list[str]:
        """List the key names stored under root/path."""
        return await self._send(build_keys(root=root, path=path, identity=identity), parse_keys)

    async def reset(
        self,
        *,
        root: str | None = None,
        path: str | None = None,
        key: str | None = None,
        identity: str | None = None,
    ) -> None:
        """Delete an entry (or everything under root/path)."""
        request = build_reset(root=root, path=path, key=key, identity=identity)
        await self._send(request, parse_reset)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncKeyknoxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
