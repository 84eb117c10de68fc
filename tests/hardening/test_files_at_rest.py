"""The data directory is Coffer's alone: nothing under it is open to group or others.

Before issue 12 it was created 0755 and coffer.db 0644, so any local user could read key
names, metadata and policies. The tests run `coffer admin` and a real server with a
permissive umask (022, as most shells have) and look at every file and directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import CofferServer, stop_server
from tests.support.s3 import new_bucket, s3_client


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """What the processes started here inherit: the umask that used to leak."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def loose(root: Path) -> list[str]:
    """Every path under `root` (itself included) with a group or other permission bit."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return found


def write_some(server: CofferServer) -> None:
    """A bucket, objects (one replaced, so a blob is retired), an open multipart upload with a part."""
    s3 = s3_client(server, server.mint_key())
    bucket = new_bucket(s3, "rest")
    s3.put_object(Bucket=bucket, Key="a", Body=b"first")
    s3.put_object(Bucket=bucket, Key="a", Body=b"second")
    s3.put_object(Bucket=bucket, Key="dir/b", Body=os.urandom(300_000))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=os.urandom(5 << 20))


def test_a_new_store_is_private_to_its_owner(tmp_path: Path) -> None:
    server = CofferServer(data_dir=tmp_path / "data", workers=2)  # workers write files of their own
    server.cli("admin", "user", "create", "carol", "--with-token")  # creates the store
    assert not (found := loose(server.data_dir)), found
    server.start()
    try:
        write_some(server)
        server.cli("admin", "gc")
        names = {p.name for p in server.data_dir.rglob("*")}
        assert {"coffer.db-wal", "coffer.db-shm", "audit.log", "master.key", "changes"} <= names
        assert sum(1 for p in (server.data_dir / "blobs").rglob("*") if p.is_file()) >= 4
        assert not (found := loose(server.data_dir)), found
    finally:
        stop_server(server)
    assert not (found := loose(server.data_dir)), found


def test_an_older_store_is_tightened_once_with_a_warning(tmp_path: Path) -> None:
    server = CofferServer(data_dir=tmp_path / "data")
    server.cli("admin", "org", "list")
    for path in [server.data_dir, *server.data_dir.rglob("*")]:  # as an older version left it
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    server.start()
    try:
        write_some(server)
        data = server.data_dir
        for path in (data, data / "blobs", data / "run"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        for path in (data / "coffer.db", data / "coffer.db-wal", data / "coffer.db-shm"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        stop_server(server)
    assert server.log().count("removed group and other access from the data directory") == 1
    again = server.cli("admin", "org", "list")
    assert "removed group and other access" not in again.stderr, "nothing left to tighten"
