"""rclone (Debian's package) against a real server: a remote configured only through
RCLONE_CONFIG_<NAME>_* variables, path-style, provider "Other"."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import Cli
from tests.support.data import MIB, PatternStream, make_tree, read_tree, sha256_file
from tests.support.s3 import client_error, unique

REMOTE = "coffer"


def test_tree_copy_list_check_sync_delete_purge(rclone: Cli, boto: Any, tmp_path: Path) -> None:
    bucket = unique("rc")
    rclone("mkdir", f"{REMOTE}:{bucket}")
    assert bucket in {b["Name"] for b in boto.list_buckets()["Buckets"]}

    src = tmp_path / "src"
    files = make_tree(src)
    rclone("copy", str(src), f"{REMOTE}:{bucket}/tree")
    listed = {o["Key"]: o["Size"] for o in boto.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {f"tree/{rel}": len(data) for rel, data in files.items()}

    ls = rclone("ls", f"{REMOTE}:{bucket}").stdout
    assert {line.split(maxsplit=1)[1] for line in ls.splitlines()} == {f"tree/{rel}" for rel in files}

    entries = json.loads(rclone("lsjson", "-R", "--hash", f"{REMOTE}:{bucket}/tree").stdout)
    objects = {e["Path"]: e for e in entries if not e["IsDir"]}
    assert set(objects) == set(files)
    for rel, data in files.items():
        assert objects[rel]["Size"] == len(data)
        assert objects[rel]["Hashes"]["md5"] == hashlib.md5(data).hexdigest()
    dirs = {e["Path"] for e in entries if e["IsDir"]}
    assert {"a b", "a b/ünïcødé", "a b/ünïcødé/déep", "nested/1/2/3/4"} <= dirs

    # check compares every hash; it must also be able to say no.
    ok = rclone("check", str(src), f"{REMOTE}:{bucket}/tree")
    assert "0 differences found" in ok.stderr
    target = src / "a b/space name.txt"
    target.write_bytes(bytes(b ^ 0xFF for b in target.read_bytes()))  # same size, other bytes
    differs = rclone("check", str(src), f"{REMOTE}:{bucket}/tree", check=False)
    assert differs.returncode != 0
    assert "1 differences found" in differs.stderr

    # sync makes the remote equal the source: the changed file is re-sent, a removed one deleted.
    (src / "top.txt").unlink()
    (src / "new dir").mkdir()
    (src / "new dir/fresh.txt").write_bytes(b"fresh")
    rclone("sync", str(src), f"{REMOTE}:{bucket}/tree")
    rclone("check", str(src), f"{REMOTE}:{bucket}/tree")
    back = tmp_path / "back"
    rclone("copy", f"{REMOTE}:{bucket}/tree", str(back))
    assert read_tree(back) == read_tree(src)
    keys = {o["Key"] for o in boto.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "tree/top.txt" not in keys and "tree/new dir/fresh.txt" in keys

    # delete removes only what the filter matches.
    rclone("delete", "--include", "*.txt", f"{REMOTE}:{bucket}/tree")
    keys = {o["Key"] for o in boto.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert keys == {"tree/a b/ünïcødé/déep/ファイル.bin", "tree/plus+equals=and&percent%/x.dat"}

    rclone("purge", f"{REMOTE}:{bucket}")
    with pytest.raises(Exception) as gone:
        boto.head_bucket(Bucket=bucket)
    assert client_error(gone.value)[0] == 404


def test_large_file_goes_multipart(rclone: Cli, boto: Any, tmp_path: Path) -> None:
    bucket = unique("rcbig")
    rclone("mkdir", f"{REMOTE}:{bucket}")
    src = tmp_path / "src"
    src.mkdir()
    stream = PatternStream(16 * MIB + 123, seed=3)
    with (src / "large.bin").open("wb") as f:
        for chunk in stream.chunks():
            f.write(chunk)
    flags = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-upload-concurrency", "2"]
    rclone("copy", *flags, str(src), f"{REMOTE}:{bucket}")

    head = boto.head_object(Bucket=bucket, Key="large.bin")
    assert head["ContentLength"] == 16 * MIB + 123
    assert head["ETag"].endswith('-4"'), head["ETag"]  # 5+5+5+1.0001 MiB
    # rclone records the whole file's MD5 as metadata, which is what `check` compares.
    assert head["Metadata"]["md5chksum"]
    rclone("check", str(src), f"{REMOTE}:{bucket}")

    back = tmp_path / "back"
    rclone("copy", f"{REMOTE}:{bucket}/large.bin", str(back))
    assert sha256_file(back / "large.bin") == stream.sha256.hexdigest()
    rclone("purge", f"{REMOTE}:{bucket}")
