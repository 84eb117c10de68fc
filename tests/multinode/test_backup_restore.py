"""The backup and restore of docs/deployment.md, performed as written: the metadata first
(`pg_dump -Fc`, or SQLite's online `.backup`), then the blobs (`rsync -a`), and the master
key; restored into a new database and a new data directory, served, and read back with the
access key that existed at backup time.

An object deleted between the metadata dump and the blob copy is still whole in the
restore: the delete only retired its blob, and the collector's grace outlasts the copy.
That is why the metadata goes first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import (
    CofferServer,
    create_pg_database,
    drop_pg_database,
    run_coffer,
    running_server,
)
from tests.support.s3 import new_bucket, s3_client


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"


def _backup_metadata(server: CofferServer, dest: Path) -> Path:
    if server.database_url:
        dump = dest / "coffer.dump"
        _run("pg_dump", "-Fc", "-f", str(dump), server.database_url)
        return dump
    copy = dest / "coffer.db"
    _run("sqlite3", str(server.data_dir / "coffer.db"), f".backup '{copy}'")
    return copy


def _restore_metadata(backup: Path, data_dir: Path) -> str:
    """Into a new database (PostgreSQL) or the new data directory (SQLite); the URL to serve."""
    if backup.suffix == ".dump":
        url = create_pg_database()
        _run("pg_restore", "--no-owner", "-d", url, str(backup))
        return url
    shutil.copy(backup, data_dir / "coffer.db")
    return ""


def test_backup_then_restore_into_a_new_store(backend: str, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    with running_server(tmp_path / "old", backend) as old:
        key = old.mint_key()
        client = s3_client(old, key)
        bucket = new_bucket(client, "backup", versioned=True)
        before: dict[str, bytes] = {f"k{i}": os.urandom(1000 * i + 1) for i in range(8)}
        for name, body in before.items():
            client.put_object(Bucket=bucket, Key=name, Body=body, Metadata={"n": name})
        client.put_object(Bucket=bucket, Key="k0", Body=b"second version")  # k0's old body is noncurrent
        parts = client.create_multipart_upload(Bucket=bucket, Key="multi")
        big = os.urandom(5 << 20)
        etag = client.upload_part(
            Bucket=bucket, Key="multi", UploadId=parts["UploadId"], PartNumber=1, Body=big
        )["ETag"]
        client.complete_multipart_upload(
            Bucket=bucket,
            Key="multi",
            UploadId=parts["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )

        # 1. metadata, 2. a delete racing the backup, 3. blobs, 4. the master key.
        metadata = _backup_metadata(old, backup)
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k1"}, {"Key": "multi"}]})
        client.delete_object(Bucket=bucket, Key="k2", VersionId=_version(client, bucket, "k2"))
        _run("rsync", "-a", f"{old.data_dir / 'blobs'}/", f"{backup / 'blobs'}/")
        shutil.copy(old.data_dir / "master.key", backup / "master.key")

        client.put_object(Bucket=bucket, Key="after", Body=b"written after the backup")

    new_dir = tmp_path / "new" / "data"
    new_dir.mkdir(parents=True)
    url = _restore_metadata(metadata, new_dir)
    _run("rsync", "-a", f"{backup / 'blobs'}/", f"{new_dir / 'blobs'}/")
    shutil.copy(backup / "master.key", new_dir / "master.key")
    os.chmod(new_dir / "master.key", 0o600)
    restored = CofferServer(data_dir=new_dir, database_url=url)
    try:
        restored.start()
        again = s3_client(restored, key)  # the key minted before the backup, secret and all
        before["k0"] = b"second version"
        for name, body in before.items():
            got = again.get_object(Bucket=bucket, Key=name)
            assert got["Body"].read() == body, name
            if name != "k0":
                assert got["Metadata"] == {"n": name}
        assert again.get_object(Bucket=bucket, Key="multi")["Body"].read() == big
        versions = again.list_object_versions(Bucket=bucket, Prefix="k0")["Versions"]
        assert len(versions) == 2
        with pytest.raises(ClientError):
            again.head_object(Bucket=bucket, Key="after")
        # The restored counters agree with the restored rows.
        done = run_coffer("admin", "usage", "verify", *restored.store_args)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        restored.stop()
        if url:
            drop_pg_database(url)


def _version(client: Any, bucket: str, key: str) -> str:
    return str(client.head_object(Bucket=bucket, Key=key)["VersionId"])
