"""Bad input at every public EThree method → a typed error whose message says what to do."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import pytest

from twilio_e2ee import EThree
from twilio_e2ee.cards.errors import CardNotActiveError
from twilio_e2ee.errors import (
    CryptoError,
    E2EEError,
    IntegrityError,
    MalformedInputError,
    SignatureError,
    TokenError,
)
from twilio_e2ee.ethree import (
    InvalidArgumentError,
    MissingPrivateKeyError,
    PrivateKeyNoBackupError,
    UsersNotFoundError,
    WrongKeyknoxPasswordError,
)
from twilio_e2ee.keyknox import MINIMUM_PARAMS
from twilio_e2ee.tokens.virgil_jwt import generate_virgil_jwt


@pytest.fixture(scope="module")
def env(offline_stack):
    app = offline_stack.credentials.virgil

    def make(identity: str) -> EThree:
        return EThree(
            lambda: generate_virgil_jwt(app, identity),
            api_url=offline_stack.cards_url,
            cards_service_public_key=offline_stack.cards_service_public_key,
            backup_params=MINIMUM_PARAMS,
        )

    tag = uuid.uuid4().hex[:8]
    alice, bob, fresh = make(f"alice-{tag}"), make(f"bob-{tag}"), make(f"fresh-{tag}")
    alice.register()
    bob.register()
    alice.backup_private_key("the right password")
    bob_card = alice.find_users(bob.identity)
    alice_card = bob.find_users(alice.identity)
    text = alice.auth_encrypt("hi", bob_card)
    raw = base64.b64decode(text)
    corrupt = bytearray(raw)
    corrupt[len(corrupt) // 2] ^= 0x40
    yield {
        "stack": offline_stack,
        "make": make,
        "alice": alice,
        "bob": bob,
        "fresh": fresh,
        "bob_card": bob_card,
        "alice_card": alice_card,
        "text": text,
        "raw": raw,
        "corrupt": bytes(corrupt),
        "legacy": alice.encrypt("old style", bob_card),
    }
    for client in (alice, bob, fresh):
        client.close()


# (id, call, expected error, a word the message must contain to tell the user what to do)
CASES = [
    (
        "register-key-pair-type",
        lambda e: e["fresh"].register("not a key pair"),
        InvalidArgumentError,
        "generate_key_pair",
    ),
    ("find-users-int", lambda e: e["alice"].find_users(42), InvalidArgumentError, "identity"),
    ("find-users-none", lambda e: e["alice"].find_users(None), InvalidArgumentError, "identity"),
    ("find-users-empty-list", lambda e: e["alice"].find_users([]), InvalidArgumentError, "empty"),
    (
        "find-users-empty-str",
        lambda e: e["alice"].find_users([""]),
        InvalidArgumentError,
        "non-empty",
    ),
    (
        "find-users-non-str",
        lambda e: e["alice"].find_users(["bob", 7]),
        InvalidArgumentError,
        "str",
    ),
    (
        "find-users-unknown",
        lambda e: e["alice"].find_users(f"ghost-{uuid.uuid4().hex}"),
        UsersNotFoundError,
        "register",
    ),
    (
        "find-cached-unknown",
        lambda e: e["alice"].find_cached_users("nobody-here"),
        UsersNotFoundError,
        "register",
    ),
    (
        "encrypt-int",
        lambda e: e["alice"].auth_encrypt(42, e["bob_card"]),
        InvalidArgumentError,
        "str (text) or bytes",
    ),
    (
        "encrypt-recipient-str",
        lambda e: e["alice"].auth_encrypt("x", "bob"),
        InvalidArgumentError,
        "find_users",
    ),
    (
        "encrypt-recipients-empty",
        lambda e: e["alice"].auth_encrypt("x", []),
        InvalidArgumentError,
        "None",
    ),
    (
        "encrypt-recipients-not-cards",
        lambda e: e["alice"].auth_encrypt("x", [42]),
        InvalidArgumentError,
        "find_users",
    ),
    (
        "encrypt-dict-not-cards",
        lambda e: e["alice"].auth_encrypt("x", {"bob": "card"}),
        InvalidArgumentError,
        "find_users",
    ),
    (
        "encrypt-without-key",
        lambda e: e["fresh"].auth_encrypt("x"),
        MissingPrivateKeyError,
        "register()",
    ),
    ("legacy-encrypt-int", lambda e: e["alice"].encrypt(3.5), InvalidArgumentError, "bytes"),
    (
        "decrypt-int",
        lambda e: e["bob"].auth_decrypt(42, e["alice_card"]),
        InvalidArgumentError,
        "bytes",
    ),
    (
        "decrypt-not-base64",
        lambda e: e["bob"].auth_decrypt("not base64 !!", e["alice_card"]),
        InvalidArgumentError,
        "base64",
    ),
    (
        "decrypt-garbage-bytes",
        lambda e: e["bob"].auth_decrypt(b"garbage", e["alice_card"]),
        MalformedInputError,
        "",
    ),
    ("decrypt-empty", lambda e: e["bob"].auth_decrypt(b"", e["alice_card"]), CryptoError, ""),
    (
        "decrypt-corrupt",
        lambda e: e["bob"].auth_decrypt(e["corrupt"], e["alice_card"]),
        CryptoError,
        "",
    ),
    (
        "decrypt-truncated",
        lambda e: e["bob"].auth_decrypt(e["raw"][:-20], e["alice_card"]),
        CryptoError,
        "",
    ),
    (
        "decrypt-sender-str",
        lambda e: e["bob"].auth_decrypt(e["text"], "alice"),
        InvalidArgumentError,
        "find_users",
    ),
    (
        "decrypt-wrong-sender",
        lambda e: e["bob"].auth_decrypt(e["text"], e["bob_card"]),
        SignatureError,
        "encrypted_at",
    ),
    (
        "decrypt-encrypted-at-str",
        lambda e: e["bob"].auth_decrypt(e["text"], e["alice_card"], "yesterday"),
        InvalidArgumentError,
        "datetime",
    ),
    (
        "decrypt-encrypted-at-naive",
        lambda e: e["bob"].auth_decrypt(e["text"], e["alice_card"], datetime(2020, 1, 1)),
        InvalidArgumentError,
        "UTC",
    ),
    (
        "decrypt-encrypted-at-too-old",
        lambda e: e["bob"].auth_decrypt(e["text"], e["alice_card"], 1_000_000),
        CardNotActiveError,
        "older",
    ),
    (
        "decrypt-not-a-recipient",
        lambda e: e["alice"].auth_decrypt(e["bob"].auth_encrypt("to myself")),
        CryptoError,
        "not encrypted for this device",
    ),
    (
        "legacy-decrypt-of-auth-message",
        lambda e: e["bob"].decrypt(e["text"], e["alice_card"]),
        SignatureError,
        "",
    ),
    (
        "auth-decrypt-of-legacy-message",
        lambda e: e["bob"].auth_decrypt(e["legacy"], e["alice_card"]),
        IntegrityError,
        "",
    ),
    (
        "auth-encrypt-lone-surrogate",
        lambda e: e["alice"].auth_encrypt("hi \ud800", e["bob_card"]),
        InvalidArgumentError,
        "bytes",
    ),
    (
        "encrypt-lone-surrogate",
        lambda e: e["alice"].encrypt("\udfff", e["bob_card"]),
        InvalidArgumentError,
        "bytes",
    ),
    (
        "backup-password-lone-surrogate",
        lambda e: e["alice"].backup_private_key("pw \ud800"),
        InvalidArgumentError,
        "password",
    ),
    (
        "backup-password-none",
        lambda e: e["alice"].backup_private_key(None),
        InvalidArgumentError,
        "password",
    ),
    (
        "backup-password-empty",
        lambda e: e["alice"].backup_private_key(""),
        InvalidArgumentError,
        "empty",
    ),
    (
        "backup-key-name-int",
        lambda e: e["alice"].backup_private_key("pw", key_name=5),
        InvalidArgumentError,
        "key_name",
    ),
    (
        "backup-key-name-empty",
        lambda e: e["alice"].backup_private_key("pw", key_name=""),
        InvalidArgumentError,
        "key_name",
    ),
    (
        "backup-without-key",
        lambda e: e["fresh"].backup_private_key("pw"),
        MissingPrivateKeyError,
        "restore_private_key",
    ),
    (
        "restore-wrong-password",
        lambda e: e["make"](e["alice"].identity).restore_private_key("wrong password"),
        WrongKeyknoxPasswordError,
        "password",
    ),
    (
        "restore-no-backup",
        lambda e: e["fresh"].restore_private_key("pw"),
        PrivateKeyNoBackupError,
        "backup_private_key",
    ),
    (
        "restore-password-bytes-list",
        lambda e: e["fresh"].restore_private_key(["pw"]),
        InvalidArgumentError,
        "str",
    ),
    (
        "change-password-empty-new",
        lambda e: e["alice"].change_password("the right password", ""),
        InvalidArgumentError,
        "new_password",
    ),
    (
        "change-password-wrong-old",
        lambda e: e["alice"].change_password("nope", "new one"),
        WrongKeyknoxPasswordError,
        "password",
    ),
    (
        "reset-key-name-list",
        lambda e: e["alice"].reset_private_key_backup(key_name=["x"]),
        InvalidArgumentError,
        "key_name",
    ),
    (
        "reset-missing-backup",
        lambda e: e["alice"].reset_private_key_backup(key_name="nothing"),
        PrivateKeyNoBackupError,
        "backup_private_key",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_typed_error_that_says_what_to_do(env, call, error, hint):
    with pytest.raises(error) as info:
        call(env)
    assert isinstance(info.value, E2EEError)
    message = str(info.value)
    assert len(message) > 15, message
    assert hint in message, message


def test_bad_input_leaves_the_backup_usable(env):
    """After every refused call above, the stored backup still opens with the right password."""
    device = env["make"](env["alice"].identity)
    device.restore_private_key("the right password")
    assert device.auth_decrypt(env["text"], env["alice_card"]) == "hi"
    assert device.auth_decrypt(env["alice"].auth_encrypt("x")) == "x"
    device.close()


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((42,), {}, InvalidArgumentError),
        ((lambda: "not a jwt",), {}, TokenError),
        ((lambda: "a.b.c",), {}, TokenError),
        (("callback as str",), {}, InvalidArgumentError),
        ((lambda: 1 / 0,), {}, TokenError),
    ],
    ids=["int-callback", "non-jwt-token", "garbage-jwt", "str-callback", "raising-callback"],
)
def test_bad_constructor_arguments(env, args, kwargs, error):
    with pytest.raises(error):
        EThree(*args, api_url=env["stack"].cards_url, **kwargs)


def test_bad_key_store_and_url(env):
    app = env["stack"].credentials.virgil
    token = lambda: generate_virgil_jwt(app, "someone")  # noqa: E731
    with pytest.raises(InvalidArgumentError, match="KeyStore"):
        EThree(token, api_url=env["stack"].cards_url, key_store={"not": "a store"})
    with pytest.raises(E2EEError, match="URL"):
        EThree(token, api_url="ftp://example.com")
    with pytest.raises(InvalidArgumentError, match="Argon2Params"):
        EThree(token, api_url=env["stack"].cards_url, backup_params=(3, 65536, 4))


@pytest.mark.parametrize("bad_key", [b"not a key", "not base64 !", 42])
def test_async_constructor_failure_leaves_no_unclosed_http_client(monkeypatch, bad_key):
    """A Cards client that cannot be built (bad service key) must not strand an AsyncClient."""
    import httpx

    from twilio_e2ee import ethree_async
    from twilio_e2ee.ethree_async import AsyncEThree

    created: list[httpx.AsyncClient] = []

    class Recording(httpx.AsyncClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(ethree_async.httpx, "AsyncClient", Recording)
    with pytest.raises(E2EEError):
        AsyncEThree(lambda: "token", cards_service_public_key=bad_key)
    assert all(client.is_closed for client in created), "an AsyncClient was left open"
    # with a good key the client is created, owned, and closed by aclose()
    import asyncio

    from twilio_e2ee.crypto.keys import generate_key_pair

    key = generate_key_pair().public_key
    good = AsyncEThree(lambda: "token", cards_service_public_key=key)
    assert len(created) == 1 and not created[0].is_closed
    asyncio.run(good.aclose())
    assert created[0].is_closed
