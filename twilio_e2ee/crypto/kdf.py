"""Password-based key derivation (sans-I/O): Argon2id (RFC 9106, version 0x13) via `cryptography`.

One parameter class for every format that stores keys under a password (the encrypted key
files of :mod:`twilio_e2ee.storage` and the Keyknox backup blob of :mod:`twilio_e2ee.keyknox`).
It checks what any use needs: integer fields, Argon2's own rule (at least 8 KiB per lane) and
upper bounds, so that parameters read from a file can never ask for unbounded work. Each format
adds its own policy on top (e.g. the backup's OWASP floor) as a function of that format.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from twilio_e2ee.errors import ConfigurationError, KeyStorageError

__all__ = [
    "MAX_MEMORY_KIB",
    "MAX_OUTPUT_LENGTH",
    "MAX_PARALLELISM",
    "MAX_TIME_COST",
    "MIN_OUTPUT_LENGTH",
    "MIN_PARALLELISM",
    "MIN_SALT_LENGTH",
    "MIN_TIME_COST",
    "Argon2ParameterError",
    "Argon2Params",
]

# Bounds checked before any derivation, so hostile parameters cannot make us burn CPU or RAM.
MIN_TIME_COST, MAX_TIME_COST = 1, 64
MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB
MIN_PARALLELISM, MAX_PARALLELISM = 1, 64
MIN_SALT_LENGTH = 8  # RFC 9106 §3.1
MIN_OUTPUT_LENGTH, MAX_OUTPUT_LENGTH = 4, 1024


class Argon2ParameterError(KeyStorageError, ConfigurationError):
    """Argon2id parameters are not integers or are out of range.

    A :class:`KeyStorageError` (these parameters only ever protect stored keys) and a
    :class:`ConfigurationError` (they come from the caller's configuration). Formats that read
    parameters from a file map it to their own corruption error.
    """


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters. Defaults: RFC 9106's second recommendation (t=3, 64 MiB, p=4).

    Raises :class:`Argon2ParameterError` unless every field is an int (not bool) with
    ``MIN_TIME_COST <= time_cost <= MAX_TIME_COST``, ``MIN_PARALLELISM <= parallelism <=
    MAX_PARALLELISM`` and ``8 * parallelism <= memory_kib <= MAX_MEMORY_KIB``.
    """

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    def __post_init__(self) -> None:
        for name in ("time_cost", "memory_kib", "parallelism"):
            if type(getattr(self, name)) is not int:
                raise Argon2ParameterError(
                    f"Argon2 {name} must be an int, got {type(getattr(self, name)).__name__}"
                )
        if not MIN_TIME_COST <= self.time_cost <= MAX_TIME_COST:
            raise Argon2ParameterError(
                f"Argon2 time_cost must be {MIN_TIME_COST}..{MAX_TIME_COST}, got {self.time_cost}"
            )
        if not MIN_PARALLELISM <= self.parallelism <= MAX_PARALLELISM:
            raise Argon2ParameterError(
                f"Argon2 parallelism must be {MIN_PARALLELISM}..{MAX_PARALLELISM}, "
                f"got {self.parallelism}"
            )
        if not 8 * self.parallelism <= self.memory_kib <= MAX_MEMORY_KIB:
            raise Argon2ParameterError(
                f"Argon2 memory must be 8*parallelism..{MAX_MEMORY_KIB} KiB, got {self.memory_kib}"
            )

    def derive(self, password: bytes, salt: bytes, length: int = 32) -> bytes:
        """Argon2id(password, salt) with these parameters: ``length`` bytes (no secret, no AD)."""
        if not isinstance(password, bytes) or not isinstance(salt, bytes):
            raise Argon2ParameterError("Argon2 password and salt must be bytes")
        if len(salt) < MIN_SALT_LENGTH:
            raise Argon2ParameterError(f"Argon2 salt must be at least {MIN_SALT_LENGTH} bytes")
        if type(length) is not int or not MIN_OUTPUT_LENGTH <= length <= MAX_OUTPUT_LENGTH:
            raise Argon2ParameterError(
                f"Argon2 output length must be {MIN_OUTPUT_LENGTH}..{MAX_OUTPUT_LENGTH} bytes"
            )
        kdf = Argon2id(
            salt=salt,
            length=length,
            iterations=self.time_cost,
            lanes=self.parallelism,
            memory_cost=self.memory_kib,
        )
        return kdf.derive(password)
