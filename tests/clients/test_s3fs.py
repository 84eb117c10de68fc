"""s3fs (fsspec over aiobotocore) against a real server: the file-system view of buckets."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import s3fs

from tests.support.data import MIB, PatternStream, make_tree, read_tree
from tests.support.harness import CofferServer
from tests.support.s3 import REGION, unique


@pytest.fixture(scope="module")
def fs(server: CofferServer, key: dict[str, Any]) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        key=key["accessKeyId"],
        secret=key["secretKey"],
        client_kwargs={"endpoint_url": server.s3_url, "region_name": REGION},
        skip_instance_cache=True,
        use_listings_cache=False,
    )


def test_write_read_list_find_walk_rm(fs: s3fs.S3FileSystem, boto: Any) -> None:
    bucket = unique("fs")
    fs.mkdir(bucket)
    assert bucket in {b["Name"] for b in boto.list_buckets()["Buckets"]}

    with fs.open(f"{bucket}/notes/hello.txt", "w", encoding="utf-8") as f:
        f.write("héllo, file system\n")
    with fs.open(f"{bucket}/notes/hello.txt", "r", encoding="utf-8") as f:
        assert f.read() == "héllo, file system\n"

    # A write larger than the block size is sent as a multipart upload, block by block.
    stream = PatternStream(11 * MIB + 7, seed=5)
    with fs.open(f"{bucket}/data/deep/blob.bin", "wb", block_size=5 * MIB) as f:
        for chunk in stream.chunks(3 * MIB):
            f.write(chunk)
    info = fs.info(f"{bucket}/data/deep/blob.bin")
    assert info["size"] == 11 * MIB + 7 and info["type"] == "file"
    assert int(info["ETag"].strip('"').split("-")[1]) >= 2, info["ETag"]  # a multipart ETag
    with fs.open(f"{bucket}/data/deep/blob.bin", "rb", block_size=2 * MIB) as f:
        f.seek(5 * MIB - 3)
        middle = f.read(10)
        f.seek(0)
        whole = f.read()
    assert hashlib.sha256(whole).hexdigest() == stream.sha256.hexdigest()
    assert middle == whole[5 * MIB - 3 : 5 * MIB + 7]
    assert fs.cat_file(f"{bucket}/data/deep/blob.bin", start=100, end=120) == whole[100:120]

    assert fs.ls(bucket, detail=False) == [f"{bucket}/data", f"{bucket}/notes"]
    entries = {e["name"]: e["type"] for e in fs.ls(f"{bucket}/data", detail=True)}
    assert entries == {f"{bucket}/data/deep": "directory"}
    assert fs.isdir(f"{bucket}/data/deep") and fs.isfile(f"{bucket}/notes/hello.txt")
    assert fs.find(bucket) == [f"{bucket}/data/deep/blob.bin", f"{bucket}/notes/hello.txt"]
    assert fs.glob(f"{bucket}/**/*.txt") == [f"{bucket}/notes/hello.txt"]
    walked = list(fs.walk(bucket))
    assert walked == [
        (bucket, ["data", "notes"], []),
        (f"{bucket}/data", ["deep"], []),
        (f"{bucket}/data/deep", [], ["blob.bin"]),
        (f"{bucket}/notes", [], ["hello.txt"]),
    ]

    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{bucket}/notes/missing.txt")
    assert not fs.exists(f"{bucket}/notes/missing.txt")

    fs.rm(f"{bucket}/data", recursive=True)
    assert fs.find(bucket) == [f"{bucket}/notes/hello.txt"]
    fs.rm(f"{bucket}/notes/hello.txt")
    assert boto.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    fs.rmdir(bucket)
    assert bucket not in {b["Name"] for b in boto.list_buckets()["Buckets"]}


def test_put_and_get_a_directory_tree(fs: s3fs.S3FileSystem, tmp_path: Path) -> None:
    bucket = unique("fstree")
    fs.mkdir(bucket)
    src = tmp_path / "src"
    files = make_tree(src)
    fs.put(f"{src}/", f"{bucket}/tree/", recursive=True)
    found = fs.find(f"{bucket}/tree")
    assert sorted(found) == sorted(f"{bucket}/tree/{rel}" for rel in files)
    assert fs.du(f"{bucket}/tree") == sum(len(d) for d in files.values())
    back = tmp_path / "back"
    fs.get(f"{bucket}/tree/", f"{back}/", recursive=True)
    assert read_tree(back) == files
    fs.rm(bucket, recursive=True)
    assert not fs.exists(bucket)
