"""Keyknox v2 handlers of the mock (sans-I/O: store + caller identity + parsed body → Reply).

Semantics, as Virgil's Keyknox v2 and the JS/Swift clients expect them:

* ``push`` writes ``<caller>/root/path/key`` with ``meta``/``value`` (base64) and the
  ``identities`` allowed to read it (50021 without them). Overwriting an entry needs its current
  hash in ``Virgil-Keyknox-Previous-Hash`` (missing or stale: 50010); creating one must not send
  a hash. Every answer carries the entry's ``Virgil-Keyknox-Hash``, which changes on every push
  (a per-entry version is hashed in, so an old hash never comes back).
* ``pull`` reads ``identity``'s namespace (default: the caller's). A missing entry of one's own
  namespace reads as empty (meta/value ``""``, no hash), as E3Kit's backup flow needs; another
  namespace is readable only when the caller is listed in ``identities``, otherwise 50017
  (whether or not the entry exists).
* ``keys`` lists the key names under root/path that the caller may read.
* ``reset`` works in the caller's namespace: with ``identity`` naming someone else it removes that
  identity from the access lists (E3Kit's group ``removeRecipient``; the hash stays); otherwise it
  deletes the matching entries. Resetting nothing is not an error.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from typing import Any

from mock_services.cards import errors as codes
from mock_services.cards.common import Reply, check_name
from mock_services.cards.errors import ApiError
from mock_services.cards.store import CardsStore, KeyknoxRecord

__all__ = ["HASH_HEADER", "PREVIOUS_HASH_HEADER", "keys", "pull", "push", "reset"]

HASH_HEADER = "Virgil-Keyknox-Hash"
PREVIOUS_HASH_HEADER = "Virgil-Keyknox-Previous-Hash"
MAX_IDENTITIES = 1000


def _bad(message: str) -> ApiError:
    return ApiError(400, codes.KEYKNOX_BAD_REQUEST, message)


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, codes.BAD_JSON, "request body must be a JSON object")
    return body


def _name(body: dict[str, Any], field: str) -> str:
    try:
        return check_name(body.get(field), field)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _optional_name(body: dict[str, Any], field: str) -> str | None:
    return None if body.get(field) is None else _name(body, field)


def _place(body: dict[str, Any]) -> tuple[str, str, str]:
    """The required ``root``, ``path`` and ``key`` of an entry."""
    return _name(body, "root"), _name(body, "path"), _name(body, "key")


def _b64(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise _bad(f"'{field}' must be a base64 string")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"'{field}' is not valid base64") from None
    return value


def _hash(owner: str, root: str, path: str, key: str, version: int, meta: str, value: str) -> str:
    material = json.dumps([owner, root, path, key, version, meta, value]).encode("utf-8")
    return base64.b64encode(hashlib.sha256(material).digest()).decode("ascii")


def _answer(record: KeyknoxRecord) -> Reply:
    body = {
        "owner": record.owner,
        "root": record.root,
        "path": record.path,
        "key": record.key,
        "identities": list(record.identities),
        "meta": record.meta,
        "value": record.value,
    }
    return Reply(200, body, {HASH_HEADER: record.hash})


def _empty(owner: str, root: str | None, path: str | None, key: str | None) -> Reply:
    body = {
        "owner": owner,
        "root": root or "",
        "path": path or "",
        "key": key or "",
        "identities": [],
        "meta": "",
        "value": "",
    }
    return Reply(200, body)


def push(store: CardsStore, caller: str, raw: Any, headers: dict[str, str]) -> Reply:
    body = _object(raw)
    root, path, key = _place(body)
    identities = body.get("identities")
    if not isinstance(identities, list) or not identities:
        raise ApiError(400, codes.KEYKNOX_NO_IDENTITIES, "'identities' must be a non-empty list")
    if len(identities) > MAX_IDENTITIES:
        raise ApiError(400, codes.KEYKNOX_NO_IDENTITIES, "too many identities")
    try:
        allowed = tuple(dict.fromkeys(check_name(i, "identity") for i in identities))
    except ValueError as exc:
        raise ApiError(400, codes.KEYKNOX_NO_IDENTITIES, str(exc)) from None
    meta, value = _b64(body, "meta"), _b64(body, "value")
    previous = headers.get(PREVIOUS_HASH_HEADER.lower())
    current = store.kk_get(caller, root, path, key)
    if current is None and previous:
        raise ApiError(
            409, codes.KEYKNOX_STALE_HASH, "previous hash given, but the entry no longer exists"
        )
    if current is not None and previous != current.hash:
        raise ApiError(
            409,
            codes.KEYKNOX_STALE_HASH,
            "Virgil-Keyknox-Previous-Hash is missing or stale: pull the entry again",
        )
    version = 1 if current is None else current.version + 1
    record = KeyknoxRecord(
        caller,
        root,
        path,
        key,
        allowed,
        meta,
        value,
        version,
        _hash(caller, root, path, key, version, meta, value),
    )
    store.kk_put(record)
    return _answer(record)


def pull(store: CardsStore, caller: str, raw: Any, headers: dict[str, str]) -> Reply:
    body = _object(raw)
    root, path, key = _place(body)
    owner = _optional_name(body, "identity") or caller
    record = store.kk_get(owner, root, path, key)
    if owner == caller:
        return _empty(owner, root, path, key) if record is None else _answer(record)
    if record is None or caller not in record.identities:
        raise ApiError(404, codes.KEYKNOX_NO_DATA, "no data of that identity is shared with you")
    return _answer(record)


def _matching(
    store: CardsStore, owner: str, root: str | None, path: str | None, key: str | None
) -> list[KeyknoxRecord]:
    return [
        r
        for r in store.kk_list(owner)
        if (root is None or r.root == root)
        and (path is None or r.path == path)
        and (key is None or r.key == key)
    ]


def keys(store: CardsStore, caller: str, raw: Any, headers: dict[str, str]) -> Reply:
    body = _object(raw)
    root = _optional_name(body, "root")
    path = _optional_name(body, "path")
    owner = _optional_name(body, "identity") or caller
    names = [
        r.key
        for r in _matching(store, owner, root, path, None)
        if owner == caller or caller in r.identities
    ]
    return Reply(200, sorted(dict.fromkeys(names)))


def reset(store: CardsStore, caller: str, raw: Any, headers: dict[str, str]) -> Reply:
    body = _object(raw)
    root = _optional_name(body, "root")
    path = _optional_name(body, "path")
    key = _optional_name(body, "key")
    who = _optional_name(body, "identity")
    matching = _matching(store, caller, root, path, key)
    for record in matching:
        if who is not None and who != caller:
            kept = tuple(i for i in record.identities if i != who)
            store.kk_put(dataclasses.replace(record, identities=kept))
        else:
            store.kk_delete(record.owner, record.root, record.path, record.key)
    return _empty(caller, root, path, key)
