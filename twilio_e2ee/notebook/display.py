"""Rich (HTML) displays for the package's types, registered by ``%load_ext twilio_e2ee.notebook``.

Renderers never show secrets: a private key is shown by its key id only. Types are registered by
module and class name, so importing this module imports none of the types it can render.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLAIM_HELP",
    "DESCRIBERS",
    "RENDERERS",
    "ClaimsTable",
    "EntriesTable",
    "decode_jwt",
    "describe",
    "register_formatters",
    "render_html",
    "short",
    "unregister_formatters",
]

Description = tuple[str, list[tuple[str, Any]]]

_CELL = "padding:1px 6px;text-align:left;vertical-align:top;"
_WRAP = "max-width:520px;word-break:break-all;white-space:normal;"
_STYLE = (
    "border-collapse:collapse;font-family:monospace;font-size:12px;"
    "border:1px solid #ccc;margin:2px 0"
)


def short(value: str | bytes, keep: int = 24) -> str:
    """A long value cut to its first `keep` characters with its length, for display."""
    text = value.hex() if isinstance(value, bytes) else str(value)
    if len(text) <= keep:
        return text
    return f"{text[:keep]}… ({len(text)} chars)"


def _titled_table(title: str, inner_html: str) -> str:
    return (
        f"<table style='{_STYLE}'><caption style='text-align:left;font-weight:bold'>"
        f"{html.escape(title)}</caption>{inner_html}</table>"
    )


def _table(title: str, rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th style='text-align:left;padding:1px 6px;background:#f5f5f5'>{html.escape(k)}</th>"
        f"<td style='text-align:left;padding:1px 6px;{_WRAP}'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return _titled_table(title, body)


def _when(seconds: Any) -> str:
    try:
        moment = _dt.datetime.fromtimestamp(float(seconds), tz=_dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(seconds)
    return f"{seconds} ({moment:%Y-%m-%d %H:%M:%S} UTC)"


# --- keys ----------------------------------------------------------------------------------------


def _public_key_rows(key: Any) -> list[tuple[str, Any]]:
    return [
        ("key id (Virgil)", key.identifier.hex()),
        ("raw Ed25519", short(base64.b64encode(key.raw).decode())),
        ("SPKI DER", f"{len(key.der)} bytes"),
    ]


def _public_key(key: Any) -> Description:
    return "Ed25519 public key", _public_key_rows(key)


def _private_key(key: Any) -> Description:
    return "Ed25519 private key", [
        ("key id (Virgil)", key.identifier.hex()),
        ("secret", "not shown"),
    ]


def _key_pair(pair: Any) -> Description:
    return "Ed25519 key pair", [*_public_key_rows(pair.public_key), ("private key", "not shown")]


# --- cards ---------------------------------------------------------------------------------------


def _card(card: Any) -> Description:
    rows: list[tuple[str, Any]] = []
    for label, attr in (
        ("identity", "identity"),
        ("card id", "id"),
        ("created at", "created_at"),
        ("previous card id", "previous_card_id"),
        ("version", "version"),
    ):
        value = getattr(card, attr, None)
        if attr == "created_at" and isinstance(value, int | float):
            value = _when(value)
        if value is not None:
            rows.append((label, value))
    key = getattr(card, "public_key", None)
    if key is not None and hasattr(key, "identifier"):
        rows.append(("public key id", key.identifier.hex()))
    signatures = getattr(card, "signatures", None)
    if signatures:
        signers = [str(getattr(s, "signer", s)) for s in signatures]
        rows.append(("signed by", ", ".join(signers)))
    if getattr(card, "is_outdated", False):
        rows.append(("outdated", "yes: superseded by a newer card"))
    return "Virgil card", rows


# --- messages ------------------------------------------------------------------------------------


def _wire_rows(wire: Any) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("author", wire.author),
        ("conversation", wire.conversation_sid),
        ("message sid", wire.sid),
        ("index", wire.index),
    ]
    body = wire.body or ""
    rows.append(("body (what Twilio stores)", short(body, 64)))
    if wire.attributes:
        rows.append(("attributes", short(wire.attributes, 96)))
    return rows


def _wire_message(wire: Any) -> Description:
    return "Twilio message (as stored)", _wire_rows(wire)


def _decrypted_message(message: Any) -> Description:
    text = message.text if message.text is not None else f"<{len(message.data)} bytes>"
    rows: list[tuple[str, Any]] = [
        ("plaintext", text),
        ("verified: signed by card", message.sender_card_id),
    ]
    if message.envelope is not None:
        rows.append(("hardened", "yes: conversation, recipients and counter are signed"))
    return "Decrypted message ✔", rows + _wire_rows(message.wire)


def _message_failure(failure: Any) -> Description:
    rows: list[tuple[str, Any]] = [
        ("reason", getattr(failure.reason, "value", failure.reason)),
        ("detail", failure.detail),
    ]
    return "Message refused ✘", rows + _wire_rows(failure.wire)


def _sent_message(sent: Any) -> Description:
    rows: list[tuple[str, Any]] = [
        ("encrypted to", ", ".join(sent.recipients)),
        ("hardened", "yes" if sent.hardened else "no (E3Kit-compatible)"),
        ("attempts", sent.attempts),
    ]
    return "Sent message", rows + _wire_rows(sent.wire)


def _safety_number(number: Any) -> Description:
    return "Safety number (compare out of band)", [
        (f"row {i + 1}", line) for i, line in enumerate(str(number).splitlines())
    ]


# --- tokens --------------------------------------------------------------------------------------

CLAIM_HELP: Mapping[str, str] = {
    "alg": "signature algorithm (VEDS512 = Virgil's Ed25519 over SHA-512; HS256 = HMAC)",
    "typ": "token type",
    "cty": "content type: which kind of token this is",
    "kid": "id of the key that signed it (Virgil app key id / Twilio API key SID)",
    "iss": "issuer: the Virgil app (virgil-<app id>) or the Twilio API key",
    "sub": "subject: the identity (Virgil) or the Twilio account SID",
    "iat": "issued at (Unix time)",
    "nbf": "not valid before (Unix time)",
    "exp": "expires at (Unix time)",
    "ada": "additional data chosen by the backend",
    "jti": "unique token id",
    "grants": "what the token allows (Twilio: identity + chat service)",
}


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT, decoded WITHOUT verifying it (for display only)."""
    from twilio_e2ee.errors import TokenError

    if not isinstance(token, str):
        raise TokenError(f"not a JWT: expected str, got {type(token).__name__}")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a JWT: expected three dot-separated parts")
    try:
        decoded = [
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        ]
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise TokenError(f"not a JWT: {exc}") from None
    header, claims = decoded
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("not a JWT: header and claims must be JSON objects")
    return header, claims


@dataclass(frozen=True)
class ClaimsTable:
    """A JWT decoded claim by claim, with what each claim means (display only, not verified)."""

    title: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @classmethod
    def from_token(cls, token: str, title: str = "JWT") -> ClaimsTable:
        header, claims = decode_jwt(token)
        return cls(title, header, claims)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(part, name, value, meaning) for every header field and claim."""
        out: list[tuple[str, str, str, str]] = []
        for part, data in (("header", self.header), ("claims", self.claims)):
            for name, value in data.items():
                shown = _when(value) if name in ("iat", "exp", "nbf") else json.dumps(value)
                out.append((part, name, shown, CLAIM_HELP.get(name, "")))
        return out

    def __str__(self) -> str:
        return "\n".join(
            f"{part:7} {name:7} {value}" + (f"   # {meaning}" if meaning else "")
            for part, name, value, meaning in self.rows()
        )

    def _repr_html_(self) -> str:
        body = "".join(
            "<tr>"
            + "".join(f"<td style='{_CELL}{_WRAP}'>{html.escape(c)}</td>" for c in row)
            + "</tr>"
            for row in self.rows()
        )
        columns = ("part", "name", "value", "meaning")
        head = "".join(f"<th style='{_CELL}'>{h}</th>" for h in columns)
        return _titled_table(self.title, f"<tr>{head}</tr>{body}")


def _virgil_jwt_html(jwt: Any) -> str:
    return ClaimsTable("Virgil JWT", dict(jwt.header), dict(jwt.body))._repr_html_()


# --- journal -------------------------------------------------------------------------------------


def _entry_cells(entry: Any) -> list[str]:
    request = entry.request
    shown = json.dumps(request, ensure_ascii=False) if request is not None else ""
    return [
        entry.service,
        entry.method,
        entry.path,
        str(entry.status),
        entry.identity or "",
        short(shown, 120),
    ]


def _journal_rows_html(entries: Sequence[Any], title: str) -> str:
    head = "".join(
        f"<th style='{_CELL}'>{h}</th>"
        for h in ("service", "method", "path", "status", "who", "request body")
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='{_CELL}{_WRAP if i == 5 else ''}'>{html.escape(c)}</td>"
            for i, c in enumerate(_entry_cells(e))
        )
        + "</tr>"
        for e in entries
    )
    return _titled_table(title, f"<tr>{head}</tr>{body}")


@dataclass(frozen=True)
class EntriesTable:
    """Journal entries shown as a table (``str()`` gives one line per request)."""

    entries: tuple[Any, ...]
    title: str = "requests"

    def __str__(self) -> str:
        return "\n".join(" ".join(_entry_cells(e)[:5]) for e in self.entries)

    def _repr_html_(self) -> str:
        return _journal_rows_html(self.entries, self.title)


def _journal_entry_html(entry: Any) -> str:
    return _journal_rows_html([entry], "journal entry")


def _journal_html(journal: Any) -> str:
    entries = journal.entries
    tail = entries[-50:]
    title = f"request journal: {len(entries)} entries" + (
        " (last 50 shown)" if len(entries) > 50 else ""
    )
    return _journal_rows_html(tail, title)


# --- registry ------------------------------------------------------------------------------------

DESCRIBERS: dict[tuple[str, str], Callable[[Any], Description]] = {
    ("twilio_e2ee.crypto.keys", "PublicKey"): _public_key,
    ("twilio_e2ee.crypto.keys", "PrivateKey"): _private_key,
    ("twilio_e2ee.crypto.keys", "KeyPair"): _key_pair,
    ("twilio_e2ee.cards.model", "Card"): _card,
    ("twilio_e2ee.cards.safety", "SafetyNumber"): _safety_number,
    ("twilio_e2ee.chat.results", "WireMessage"): _wire_message,
    ("twilio_e2ee.chat.results", "DecryptedMessage"): _decrypted_message,
    ("twilio_e2ee.chat.results", "MessageFailure"): _message_failure,
    ("twilio_e2ee.chat.results", "SentMessage"): _sent_message,
}


def _html_of(describer: Callable[[Any], Description]) -> Callable[[Any], str]:
    def render(obj: Any) -> str:
        title, rows = describer(obj)
        return _table(title, rows)

    return render


def _lookup(registry: Mapping[tuple[str, str], Callable[[Any], Any]], obj: Any) -> Any:
    """What `registry` gives for `obj`'s class or its nearest base class, applied to `obj`."""
    for klass in type(obj).__mro__:
        function = registry.get((klass.__module__, klass.__qualname__))
        if function is not None:
            return function(obj)
    return None


def describe(obj: Any) -> Description | None:
    """(title, [(field, value), ...]) for a key, card or message, else None; never secrets."""
    described: Description | None = _lookup(DESCRIBERS, obj)
    return described


RENDERERS: dict[tuple[str, str], Callable[[Any], str]] = {
    **{name: _html_of(describer) for name, describer in DESCRIBERS.items()},
    ("twilio_e2ee.tokens.virgil_jwt", "VirgilJwt"): _virgil_jwt_html,
    ("mock_services.journal", "JournalEntry"): _journal_entry_html,
    ("mock_services.journal", "Journal"): _journal_html,
}


def render_html(obj: Any) -> str | None:
    """The HTML rendering of `obj` if it is one of the package's types, else None."""
    rendered: str | None = _lookup(RENDERERS, obj)
    return rendered


def register_formatters(ipython: Any) -> None:
    """Register the HTML renderers with an IPython shell's display formatter."""
    formatter = ipython.display_formatter.formatters["text/html"]
    for (module, name), renderer in RENDERERS.items():
        formatter.for_type_by_name(module, name, renderer)


def unregister_formatters(ipython: Any) -> None:
    """Remove what :func:`register_formatters` added."""
    formatter = ipython.display_formatter.formatters["text/html"]
    for module, name in RENDERERS:
        try:
            formatter.pop(f"{module}.{name}")
        except KeyError:
            continue
