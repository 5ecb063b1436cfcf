"""Crash-safe file writes, shared by the key store and the card pin store.

The data goes to a new temporary file in the target's directory (created exclusively, 0600 by
default, never through a symlink), is fsynced, then moved into place and the directory fsynced:
``os.replace`` to overwrite, ``os.link`` to create (atomic, and never clobbers a file another
process just created). A crash at any step leaves the old file or the new one, plus at worst a
stray ``.<stem>.<random>.tmp`` file; no partial file ever stands under the target name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["TMP_SUFFIX", "atomic_write", "fsync_dir"]

TMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, data: bytes, *, replace: bool = True, mode: int = 0o600) -> None:
    """Write ``data`` to ``target`` atomically and durably.

    With ``replace=False`` an existing ``target`` is left alone and FileExistsError is raised.
    Any other failure is the OSError itself; the temporary file is removed.
    """
    tmp = target.with_name(f".{target.stem}.{secrets.token_hex(6)}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
