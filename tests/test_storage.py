"""Local private-key storage: memory, encrypted files (Argon2id + AES-GCM) and the OS keyring."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
import pytest

from twilio_e2ee.crypto import generate_key_pair
from twilio_e2ee.errors import (
    CorruptedStorageError,
    KeyEntryExistsError,
    KeyEntryNotFoundError,
    KeyStorageError,
    WrongPasswordError,
)
from twilio_e2ee.storage import (
    DEFAULT_PARAMS,
    Argon2Params,
    EncryptedFileKeyStore,
    KeyringKeyStore,
    KeyringUnavailableError,
    KeyStore,
    MemoryKeyStore,
    keyring_available,
)
from twilio_e2ee.storage.fileformat import open_key_file, parse_header

FAST = Argon2Params(time_cost=1, memory_kib=8, parallelism=1)


class DictKeyring:
    """A keyring-backend-shaped dict (not a KeyringBackend subclass, so keyring never picks it)."""

    priority = 1

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


@pytest.fixture(params=["memory", "file", "keyring"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    if request.param == "memory":
        return MemoryKeyStore()
    if request.param == "file":
        return EncryptedFileKeyStore(tmp_path / "keys", "correct horse", params=FAST)
    return KeyringKeyStore("te2e-test", backend=DictKeyring())


@pytest.fixture
def fstore(tmp_path: Path) -> EncryptedFileKeyStore:
    return EncryptedFileKeyStore(tmp_path / "keys", "correct horse", params=FAST)


# --- behaviour common to every store -----------------------------------------------------------


def test_round_trip_and_listing(store: KeyStore) -> None:
    assert isinstance(store, KeyStore)
    alice, bob = generate_key_pair().private_key, generate_key_pair().private_key
    store.save("alice@example.com", alice, {"k": "v"})
    store.save("bøb", bob)
    entry = store.load("alice@example.com")
    assert entry.private_key.der == alice.der and entry.name == "alice@example.com"
    assert dict(entry.meta or {}) == {"k": "v"}
    assert store.load("bøb").private_key.der == bob.der and store.load("bøb").meta is None
    assert store.exists("bøb") and not store.exists("carol")
    assert store.list() == ["alice@example.com", "bøb"]


def test_never_overwrites_silently(store: KeyStore) -> None:
    first, second = generate_key_pair().private_key, generate_key_pair().private_key
    created = store.save("alice", first)
    with pytest.raises(KeyEntryExistsError):
        store.save("alice", second)
    assert store.load("alice").private_key.der == first.der
    replaced = store.save("alice", second, replace=True)
    assert store.load("alice").private_key.der == second.der
    assert replaced.created_at == pytest.approx(created.created_at)


def test_delete_and_missing(store: KeyStore) -> None:
    store.save("alice", generate_key_pair().private_key)
    store.delete("alice")
    assert not store.exists("alice") and store.list() == []
    with pytest.raises(KeyEntryNotFoundError):
        store.load("alice")
    with pytest.raises(KeyEntryNotFoundError):
        store.delete("alice")
    store.delete("alice", missing_ok=True)


@pytest.mark.parametrize("bad", ["", "a\x00b", "x" * 2000, 5])
def test_bad_names_and_inputs(store: KeyStore, bad: Any) -> None:
    with pytest.raises(KeyStorageError):
        store.save(bad, generate_key_pair().private_key)
    with pytest.raises(KeyStorageError):
        store.save("ok", b"not a key")  # type: ignore[arg-type]
    with pytest.raises(KeyStorageError):
        store.save("ok", generate_key_pair().private_key, {"k": 1})  # type: ignore[dict-item]
    assert store.list() == []


# --- the encrypted file store --------------------------------------------------------------------


def test_file_is_encrypted_and_private(fstore: EncryptedFileKeyStore) -> None:
    key = generate_key_pair().private_key
    fstore.save("alice", key)
    path = fstore.path_for("alice")
    data = path.read_bytes()
    assert key.seed not in data and key.der not in data
    import base64

    assert base64.b64encode(key.der) not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(fstore.directory.stat().st_mode) == 0o700
    assert [p.name for p in fstore.directory.iterdir()] == [path.name]  # no temp files left


def test_persists_across_instances_and_wrong_password(
    fstore: EncryptedFileKeyStore, tmp_path: Path
) -> None:
    key = generate_key_pair().private_key
    fstore.save("alice", key, {"device": "laptop"})
    again = EncryptedFileKeyStore(tmp_path / "keys", "correct horse", params=FAST)
    assert again.load("alice").private_key.der == key.der
    wrong = EncryptedFileKeyStore(tmp_path / "keys", "incorrect horse", params=FAST)
    with pytest.raises(WrongPasswordError):
        wrong.load("alice")
    assert wrong.list() == ["alice"]  # names are readable without the password


def test_params_are_stored_with_the_blob(fstore: EncryptedFileKeyStore, tmp_path: Path) -> None:
    fstore.save("alice", generate_key_pair().private_key)
    other = Argon2Params(time_cost=2, memory_kib=16, parallelism=2)
    reader = EncryptedFileKeyStore(tmp_path / "keys", "correct horse", params=other)
    reader.load("alice")  # opened with the file's parameters, not the reader's
    header, _ = parse_header(fstore.path_for("alice").read_bytes())
    assert header.params == FAST and len(header.salt) == 16


def test_default_params_are_strong() -> None:
    assert DEFAULT_PARAMS.time_cost >= 3 and DEFAULT_PARAMS.memory_kib >= 64 * 1024
    with pytest.raises(KeyStorageError):
        Argon2Params(time_cost=0)


def test_every_single_byte_flip_is_corruption(fstore: EncryptedFileKeyStore) -> None:
    fstore.save("alice", generate_key_pair().private_key)
    good = fstore.path_for("alice").read_bytes()
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        with pytest.raises(CorruptedStorageError):
            open_key_file(bytes(bad), "correct horse", expected_name="alice")
    for cut in (0, 5, 30, len(good) - 17, len(good) - 1):
        with pytest.raises(CorruptedStorageError):
            open_key_file(good[:cut], "correct horse")
    with pytest.raises(CorruptedStorageError):
        open_key_file(good + b"\x00", "correct horse")


def test_corrupted_file_on_disk(fstore: EncryptedFileKeyStore) -> None:
    fstore.save("alice", generate_key_pair().private_key)
    path = fstore.path_for("alice")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptedStorageError):
        fstore.load("alice")
    path.write_bytes(b"")
    with pytest.raises(CorruptedStorageError):
        fstore.load("alice")


def test_swapped_files_are_detected(fstore: EncryptedFileKeyStore) -> None:
    fstore.save("alice", generate_key_pair().private_key)
    fstore.save("mallory", generate_key_pair().private_key)
    os.replace(fstore.path_for("mallory"), fstore.path_for("alice"))
    with pytest.raises(CorruptedStorageError):
        fstore.load("alice")
    assert fstore.list() == []  # the file under alice's path names mallory: not listed


# --- crash safety of the atomic write -----------------------------------------------------------


class Crash(Exception):
    pass


def _fail_on(monkeypatch: pytest.MonkeyPatch, name: str, call: int) -> None:
    real = getattr(os, name)
    count = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count["n"] += 1
        if count["n"] == call:
            raise OSError(5, f"simulated crash in os.{name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, wrapper)


CRASH_POINTS = [("write", 1), ("fsync", 1), ("fsync", 2), ("replace", 1), ("link", 1)]


@pytest.mark.parametrize(("func", "call"), CRASH_POINTS)
def test_crash_while_replacing_keeps_old_or_new(
    fstore: EncryptedFileKeyStore, monkeypatch: pytest.MonkeyPatch, func: str, call: int
) -> None:
    old, new = generate_key_pair().private_key, generate_key_pair().private_key
    fstore.save("alice", old)
    with monkeypatch.context() as m:
        _fail_on(m, func, call)
        with contextlib.suppress(KeyStorageError):
            fstore.save("alice", new, replace=True)
    loaded = fstore.load("alice").private_key.der
    assert loaded in (old.der, new.der)
    if func in ("write", "replace") or (func == "fsync" and call == 1):
        assert loaded == old.der  # failed before the rename: the old key stays
    assert not list(fstore.directory.glob("*.tmp")) and not list(fstore.directory.glob(".*"))


@pytest.mark.parametrize(("func", "call"), CRASH_POINTS)
def test_crash_while_creating_leaves_nothing_or_new(
    fstore: EncryptedFileKeyStore, monkeypatch: pytest.MonkeyPatch, func: str, call: int
) -> None:
    new = generate_key_pair().private_key
    with monkeypatch.context() as m:
        _fail_on(m, func, call)
        with contextlib.suppress(KeyStorageError):
            fstore.save("alice", new)
    if fstore.exists("alice"):
        assert fstore.load("alice").private_key.der == new.der
    else:
        assert fstore.list() == []
    assert not [p for p in fstore.directory.iterdir() if p.name.startswith(".")]
    fstore.save("alice", new, replace=True)  # the store stays usable


def test_stray_temp_file_from_hard_crash_is_ignored(fstore: EncryptedFileKeyStore) -> None:
    key = generate_key_pair().private_key
    fstore.save("alice", key)
    stem = fstore.path_for("alice").stem
    (fstore.directory / f".{stem}.deadbeef.tmp").write_bytes(b"half-written garbage")
    (fstore.directory / "junk.key").write_bytes(b"not a key file")
    assert fstore.list() == ["alice"]
    assert fstore.load("alice").private_key.der == key.der


def test_concurrent_creator_is_not_clobbered(
    fstore: EncryptedFileKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that appears between the existence check and the link is never overwritten."""
    other = generate_key_pair().private_key
    real_link = os.link

    def racing_link(src: Any, dst: Any, **kw: Any) -> None:
        helper = EncryptedFileKeyStore(fstore.directory, "correct horse", params=FAST)
        monkeypatch.setattr(os, "link", real_link)
        helper.save("alice", other)
        real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeyEntryExistsError):
        fstore.save("alice", generate_key_pair().private_key)
    assert fstore.load("alice").private_key.der == other.der


# --- keyring -------------------------------------------------------------------------------------


def test_keyring_refuses_failing_backend() -> None:
    from keyring.backends import fail

    assert not keyring_available(fail.Keyring())
    with pytest.raises(KeyringUnavailableError):
        KeyringKeyStore(backend=fail.Keyring())


def test_keyring_damaged_record() -> None:
    backend = DictKeyring()
    ks = KeyringKeyStore("svc", backend=backend)
    ks.save("alice", generate_key_pair().private_key)
    backend.secrets[("svc", "alice")] = '{"version": 1, "private_key": "!!"}'
    with pytest.raises(CorruptedStorageError):
        ks.load("alice")


@pytest.fixture
def system_keyring() -> Iterator[KeyringKeyStore]:
    if not keyring_available():
        pytest.skip(f"no OS keyring backend available ({type(keyring.get_keyring()).__name__})")
    ks = KeyringKeyStore("twilio_e2ee-test-suite")
    yield ks
    for name in ks.list():
        ks.delete(name, missing_ok=True)


def test_system_keyring_round_trip(system_keyring: KeyringKeyStore) -> None:
    key = generate_key_pair().private_key
    system_keyring.save("te2e-test-alice", key, replace=True)
    assert system_keyring.load("te2e-test-alice").private_key.der == key.der


def test_vanished_directory_is_a_key_storage_error(fstore: EncryptedFileKeyStore) -> None:
    """An OSError before the temp file exists (directory removed) is typed too, never raw."""
    fstore.directory.rmdir()
    with pytest.raises(KeyStorageError) as info:
        fstore.save("alice", generate_key_pair().private_key)
    assert not isinstance(info.value, KeyEntryExistsError)
    assert not fstore.exists("alice")


@pytest.mark.parametrize(
    "kwargs", [{"time_cost": "3"}, {"time_cost": 2.5}, {"memory_kib": None}, {"parallelism": True}]
)
def test_argon2_params_must_be_integers(kwargs: dict[str, Any]) -> None:
    with pytest.raises(KeyStorageError):
        Argon2Params(**kwargs)


def test_unencodable_password_is_a_key_storage_error(tmp_path: Path) -> None:
    with pytest.raises(KeyStorageError):
        EncryptedFileKeyStore(tmp_path / "keys", "\ud800 password", params=FAST)
