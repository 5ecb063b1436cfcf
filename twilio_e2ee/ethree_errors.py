"""Errors of :class:`~twilio_e2ee.ethree.EThree`, named like E3Kit's (``e3kit-base/src/errors.ts``).

All derive from :class:`twilio_e2ee.errors.EThreeError`; where a package-wide branch fits too
(key storage, configuration), they derive from it as well, so either ``except`` works.
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio_e2ee.errors import EThreeError, KeyEntryExistsError, KeyEntryNotFoundError
from twilio_e2ee.keyknox.errors import (
    BackupIntegrityError,
    CorruptedBackupError,
    PythiaBackupNotSupportedError,
    WrongKeyknoxPasswordError,
)

__all__ = [
    "BackupAlreadyExistsError",
    "BackupIntegrityError",
    "CorruptedBackupError",
    "EThreeError",
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


class InvalidArgumentError(EThreeError):
    """A public method got an argument of the wrong type or value (the message says which)."""


class IdentityAlreadyExistsError(EThreeError):
    """``register``: the identity already has a card."""

    def __init__(self, identity: str) -> None:
        super().__init__(
            f"{identity!r} is already registered. To get its private key on this device use "
            "restore_private_key(password) (if it was backed up), or rotate_private_key() if the "
            "key is lost"
        )
        self.identity = identity


class RegisterRequiredError(EThreeError):
    """The identity has no card yet: call ``register()`` first."""

    def __init__(self, identity: str) -> None:
        super().__init__(f"{identity!r} is not registered: call register() first")
        self.identity = identity


class RegisterInProgressError(EThreeError):
    """``register`` or ``rotate_private_key`` is already running for this client.

    Two concurrent registrations would publish two cards and make the identity unusable.
    """

    def __init__(self) -> None:
        super().__init__(
            "register()/rotate_private_key() is already running on this client; wait for it to "
            "finish (running both at once would publish two cards for one identity)"
        )


class MultipleCardsError(EThreeError):
    """The identity has several active cards, which E3Kit does not support."""

    def __init__(self, identity: str) -> None:
        super().__init__(
            f"{identity!r} has several active cards, which is not supported; unregister() "
            "revokes them all, then register() again"
        )
        self.identity = identity


class UsersNotFoundError(EThreeError):
    """``find_users``: some identities have no card; ``identities`` lists them."""

    def __init__(self, identities: Sequence[str]) -> None:
        self.identities = list(identities)
        super().__init__(
            f"no card found for {', '.join(map(repr, self.identities))}: these users must "
            "register() first (check the spelling of the identities)"
        )


class UsersFoundWithMultipleCardsError(EThreeError):
    """``find_users``: some identities have several active cards; ``identities`` lists them."""

    def __init__(self, identities: Sequence[str]) -> None:
        self.identities = list(identities)
        super().__init__(
            f"{', '.join(map(repr, self.identities))} have several active cards, which is not "
            "supported: each of these users must unregister() and register() again"
        )


class PrivateKeyAlreadyExistsError(EThreeError, KeyEntryExistsError):
    """A local private key exists and would be overwritten."""

    def __init__(self, identity: str) -> None:
        super().__init__(
            f"a private key of {identity!r} is already stored on this device. Use cleanup() to "
            "delete it first; if it is the last copy, messages encrypted to it become unreadable"
        )
        self.identity = identity


class MissingPrivateKeyError(EThreeError, KeyEntryNotFoundError):
    """No local private key: register(), restore_private_key() or rotate_private_key() first."""

    def __init__(self, identity: str) -> None:
        super().__init__(
            f"no private key of {identity!r} on this device: call register() (new user), "
            "restore_private_key(password) (key backed up) or rotate_private_key() (key lost)"
        )
        self.identity = identity


class PrivateKeyNoBackupError(EThreeError):
    """No backup is stored under that key name."""

    def __init__(self, identity: str, key_name: str) -> None:
        super().__init__(
            f"no private-key backup of {identity!r} named {key_name!r}: call "
            "backup_private_key(password) on a device that has the key"
        )
        self.identity = identity
        self.key_name = key_name


class BackupAlreadyExistsError(EThreeError):
    """A backup is already stored under that key name; it is never overwritten silently."""

    def __init__(self, identity: str, key_name: str) -> None:
        super().__init__(
            f"a private-key backup of {identity!r} named {key_name!r} already exists: use "
            "change_password(old, new), or reset_private_key_backup() and back up again"
        )
        self.identity = identity
        self.key_name = key_name
