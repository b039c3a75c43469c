"""Run directory: shard markers, accounting, completion, resumability primitives."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.rundir import RunDir, ShardResult, make_rejects, stable_id


def test_shards_stats_and_success(tmp_path):
    stage = RunDir(str(tmp_path), "run").stage("demo")
    assert not stage.is_complete() and stage.done_shards() == set()
    stage.write_shard(ShardResult("a", in_rows=3, out_rows=2, passed=2, rejected={"bad": 1}),
                      pa.table({"x": [1, 2]}),
                      make_rejects([{"input_id": "3", "stage": "demo", "reason": "bad", "detail": "why"}]))  # fmt: skip
    stage.write_shard(ShardResult("b", in_rows=1, out_rows=4, passed=1), pa.table({"x": [3, 4, 5, 6]}))
    assert stage.done_shards() == {"a", "b"}
    assert stage.read_table().column("x").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert stage.read_rejects().column("reason").to_pylist() == ["bad"]
    stats = stage.finish("fp1", 1.5)
    assert (stats["in"], stats["passed"], stats["out"], stats["rejected"]) == (4, 3, 6, {"bad": 1})
    assert stage.is_complete() and stage.completed_fingerprint() == "fp1"
    assert json.loads((tmp_path / "run" / "demo" / "stats.json").read_text())["shards"] == 2


def test_accounting_is_enforced(tmp_path):
    stage = RunDir(str(tmp_path), "run").stage("demo")
    with pytest.raises(AssertionError, match="a row was lost"):
        stage.write_shard(ShardResult("a", in_rows=3, out_rows=1, passed=1), pa.table({"x": [1]}))
    assert stage.done_shards() == set()


def test_unfinished_shard_is_invisible(tmp_path):
    stage = RunDir(str(tmp_path), "run").stage("demo")
    stage.fs.create_dir(stage.data_path, recursive=True)
    # A killed worker's leftovers: data written, marker not yet.
    pa.parquet.write_table(pa.table({"x": [9]}), stage.data_file("partial"))
    stage.write_shard(ShardResult("done", in_rows=1, out_rows=1, passed=1), pa.table({"x": [1]}))
    assert stage.data_files() == [stage.data_file("done")]
    stage.reset()
    assert not (tmp_path / "run" / "demo").exists()


def test_stable_ids():
    assert stable_id("doc", 0, 10) == stable_id("doc", 0, 10)
    assert stable_id("doc", 0, 10) != stable_id("doc", 0, 11)
    assert len(stable_id("x")) == 16
