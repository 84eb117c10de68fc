"""Node wiring: the storage core is part of every node, with zones from settings."""

from __future__ import annotations

from pathlib import Path

from coffer.config import Settings
from coffer.node import Node
from coffer.storage.service import COREWEAVE_ZONES


def test_node_wires_blobs_and_storage(tmp_path: Path) -> None:
    node = Node.open(Settings(data_dir=str(tmp_path / "data"), zones="lab-1, LAB-2", default_zone="lab-1"))
    try:
        assert node.blobs.root == node.data_path / "blobs"
        assert (node.data_path / "blobs" / ".tmp").is_dir()
        assert (
            node.storage.buckets.zones == ["LAB-1", "LAB-2"] and node.storage.buckets.default_zone == "LAB-1"
        )
        assert node.storage.blobs is node.blobs and node.storage.tx.changes is node.changes
        node.start_background()
        assert node.storage.collector.running
    finally:
        node.close()
    assert not node.storage.collector.running


def test_node_defaults_to_coreweave_zones(tmp_path: Path) -> None:
    node = Node.open(Settings(data_dir=str(tmp_path / "data")))
    try:
        assert node.storage.buckets.zones == list(COREWEAVE_ZONES)
        assert node.storage.buckets.default_zone == "US-EAST-04A"
    finally:
        node.close()
