"""docs/deployment.md shows the nginx configuration the cluster tests run: the block in the
doc is `nginx_conf()` rendered for the doc's example nodes, so neither can drift alone."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cluster import nginx_conf

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
NODES = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]


def test_the_documented_nginx_config_is_the_one_the_tests_run() -> None:
    text = DOC.read_text()
    section = text.split("## The nginx configuration", 1)[1].split("\n## ", 1)[0]
    documented = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert documented, "docs/deployment.md lost its nginx block"
    rendered = nginx_conf(
        s3_nodes=[f"{n}:8490" for n in NODES],
        api_nodes=[f"{n}:8480" for n in NODES],
        s3_listen="127.0.0.1:9490",
        api_listen="127.0.0.1:9480",
        work="/var/lib/coffer-lb",
    )
    assert documented.group(1) == rendered
