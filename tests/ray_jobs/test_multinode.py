"""Two real Ray nodes on 127.0.0.1 (`ray start --head` + `ray start --address`), two stages
submitted with `ray job submit`: the work must spread over both nodes."""

from __future__ import annotations

import pytest
import yaml

from pipeline.rundir import RunDir
from tests.local_cluster import start_head
from tests.pdf_fixtures import text_pdf

pytestmark = pytest.mark.slow


def test_two_nodes_two_submitted_stages(tmp_path):
    books = tmp_path / "books"
    books.mkdir()
    for subject in ("physics", "chemistry", "biology", "economics"):
        text_pdf(
            books / f"{subject}_notes.pdf", [f"{subject} page {i}: a worked example." for i in range(1, 9)]
        )
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "run": {"name": "multi", "root": str(tmp_path / "runs")},
                # Two 1-CPU actors: one fits on each node, so both nodes must take shards.
                "parse": {"input": str(books), "pages_per_shard": 2, "resources": {"concurrency": 2}},
                "chunk": {"max_tokens": 256, "resources": {"concurrency": 2, "node_type": "cpu_worker"}},
            }
        )
    )
    cluster = start_head(num_cpus=1)
    try:
        cluster.add_node(num_cpus=1, resources={"cpu_worker": 1000})
        for stage in ("parse", "chunk"):
            result = cluster.submit("python", "-m", f"ray_jobs.{stage}", "--config", str(config))
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run = RunDir(str(tmp_path / "runs"), "multi")
        parse_stats = run.stage("parse").read_stats()
        assert parse_stats["passed"] == 32
        assert parse_stats["nodes"] == 2, "parse shards should have run on both nodes"
        chunk_stats = run.stage("chunk").read_stats()
        assert chunk_stats["in"] == 32 and chunk_stats["counters"]["documents"] == 4
        assert chunk_stats["nodes"] == 1  # pinned to the `cpu_worker` node type: the second node only
    finally:
        cluster.stop()
