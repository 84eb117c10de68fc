"""The data directory is for Coffer's own user: nobody else may read or list it.

It holds key names, object metadata, policies, the audit trail and the master key. So
Coffer creates what it keeps there owner-only (directories 0700, files 0600) whatever
the umask, and `coffer serve` and `coffer admin` also run under umask 0077, so that
files a library creates on its own get nothing looser (SQLite gives `-wal` and `-shm`
the database file's mode, and the database is created 0600 before SQLite opens it).

A data directory left open (by an older version: 0755, `coffer.db` 0644; or made by
hand) is tightened when a node opens it, with one warning naming what changed: a store
left readable would keep leaking exactly what this protects. Only the directory and the
few files and directories at its top are changed; everything deeper (the blob tree) is
out of reach once the directory itself is 0700, so it is not walked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("coffer.datadir")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077
_OTHERS = 0o077  # group and other permission bits

# What Coffer keeps at the top of a data directory, tightened along with it.
_TOP_LEVEL = (
    "coffer.db",
    "coffer.db-wal",
    "coffer.db-shm",
    "coffer.db-journal",
    "coffer.db.write-lock",
    "master.key",
    "admin-token",
    "audit.log",
    "run",
    "blobs",
    "blobs/.tmp",
)


def make_private_dir(path: Path) -> Path:
    """Create `path` 0700 if it is missing (parents as the umask says: they are not ours)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file unless it exists, so whatever opens it next finds it private."""
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))


def prepare(data_dir: Path) -> Path:
    """Create the data directory 0700, or tighten one that is open to others."""
    if not data_dir.exists():
        return make_private_dir(data_dir)
    changed = []
    for path in (data_dir, *(data_dir / name for name in _TOP_LEVEL)):
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or not st.st_mode & _OTHERS:
                continue
            mode = stat.S_IMODE(st.st_mode)
            os.chmod(path, mode & ~_OTHERS)
        except FileNotFoundError:
            continue
        except OSError as exc:  # not ours to change (another owner): say so, go on
            log.warning("cannot make %s private (%s); other local users may read it", path, exc.strerror)
            continue
        changed.append(f"{path} {mode:04o} -> {mode & ~_OTHERS:04o}")
    if changed:
        log.warning(
            "removed group and other access from the data directory: %s",
            "; ".join(changed),
            extra={"data_dir": str(data_dir), "changed": changed},
        )
    return data_dir


def fsync_dir(path: Path) -> None:
    """Make the entries of `path` (a file just created or renamed into it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run with umask 0077 (restored after), for the commands that write the store."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)
