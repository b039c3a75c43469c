"""The Ray Data dedup plan against the plain reference implementation, on a local Ray cluster."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from pipeline.dedup.config import DedupConfig
from pipeline.dedup.ray_minhash import NEAR_DUPLICATE, TOO_SHORT, dedup_shards
from pipeline.dedup.synthetic import generate_questions
from pipeline.rundir import RunDir, ShardResult
from tests.pipeline.dedup.reference_impl import reference_dedup

N_ROWS = 2000
N_SHARDS = 4


@pytest.fixture(scope="module")
def records():
    return list(generate_questions(N_ROWS, seed=5, duplicate_rate=0.3, short_rate=0.02))


def write_extract_stage(run: RunDir, records: list[dict]) -> None:
    """A finished ``extract_qa`` stage: the records split into N_SHARDS parquet shards."""
    stage = run.stage("extract_qa")
    size = -(-len(records) // N_SHARDS)
    for s in range(N_SHARDS):
        part = records[s * size : (s + 1) * size]
        table = pa.Table.from_pylist(part)
        stage.write_shard(ShardResult(shard=f"part-{s:03d}", in_rows=len(part), passed=len(part),
                                      out_rows=len(part)), table)  # fmt: skip
    stage.finish("test", 0.0)


def read_output(run: RunDir, stage: str = "dedup") -> tuple[list[dict], list[dict]]:
    st = run.stage(stage)
    kept = sorted(st.read_table().to_pylist(), key=lambda r: r["qa_id"])
    # the source path names the run folder: compare the file name only
    rejects = sorted(
        ({**r, "source": r["source"].rsplit("/", 1)[1]} for r in st.read_rejects().to_pylist()),
        key=lambda r: r["input_id"],
    )
    return kept, rejects


@pytest.fixture(scope="module")
def reference_run(ray_cluster, tmp_path_factory, records):
    """The dedup stage with the default (reference) parameters, run once for the module."""
    run = RunDir(str(tmp_path_factory.mktemp("dedup")), "a")
    write_extract_stage(run, records)
    results = dedup_shards(run.uri, DedupConfig())
    return run, results


def test_reference_parameters_reproduce_the_reference(reference_run, records):
    run, results = reference_run
    assert sorted(r.shard for r in results) == [f"part-{s:03d}" for s in range(N_SHARDS)]
    kept, rejects = read_output(run)

    questions = [r["question"] for r in records]
    kept_ref, sizes_ref = reference_dedup(questions)
    assert len(kept) == len(kept_ref)
    # every row's cluster size is the reference's; the representative is the cluster's lowest id
    position = {r["qa_id"]: i for i, r in enumerate(records)}
    for row in kept:
        assert row["duplicate_count"] == sizes_ref[position[row["qa_id"]]]
        assert row["cluster_id"] <= row["qa_id"] or row["cluster_id"] == row["qa_id"]
        assert row["cluster_id"] == row["qa_id"]
    # accounting: every input is kept or rejected with a reason, once
    assert len(kept) + len(rejects) == len(records)
    assert sum(r.in_rows for r in results) == len(records)
    reasons = {r["reason"] for r in rejects}
    assert reasons == {TOO_SHORT, NEAR_DUPLICATE}
    n_short = sum(1 for q in questions if len(q.lower().split()) < 5 and q.count(" ") < 4)
    assert sum(r["reason"] == TOO_SHORT for r in rejects) == len(questions) - len(sizes_ref) >= n_short > 0
    # a near-duplicate reject names a kept row of the same cluster
    kept_ids = {r["qa_id"] for r in kept}
    for r in rejects:
        if r["reason"] == NEAR_DUPLICATE:
            assert r["detail"].split()[2] in kept_ids
    # the extra columns pass through untouched
    assert set(kept[0]) >= {"qa_id", "chunk_id", "doc_id", "subject", "question", "answer", "planted"}


def test_deterministic_across_partitions_batches_and_resume(reference_run, tmp_path, records):
    expected = read_output(reference_run[0])
    run = RunDir(str(tmp_path), "b")
    write_extract_stage(run, records)
    dedup_shards(run.uri, DedupConfig(batch_size=97, num_partitions=7))
    assert read_output(run) == expected

    # A killed run: one shard's marker and data are gone. The rerun writes exactly that shard.
    stage = run.stage("dedup")
    stage.fs.delete_file(f"{stage.shards_path}/part-002.json")
    stage.fs.delete_file(stage.data_file("part-002"))
    results = dedup_shards(run.uri, DedupConfig(batch_size=500, num_partitions=3))
    assert [r.shard for r in results] == ["part-002"]
    assert read_output(run) == expected
    assert dedup_shards(run.uri, DedupConfig()) == []  # nothing pending: a no-op


def test_general_mode_connected_components_match_union_find(ray_cluster, tmp_path, records):
    cfg = DedupConfig(bands=None, rows=None, threshold=0.7, num_perm=128)
    bands, rows = cfg.lsh_params()
    assert bands > 1
    run = RunDir(str(tmp_path), "g")
    write_extract_stage(run, records)
    dedup_shards(run.uri, cfg)
    kept, rejects = read_output(run)
    kept_ref, sizes_ref = reference_dedup(
        [r["question"] for r in records], num_perm=128, bands=bands, rows=rows
    )
    assert len(kept) == len(kept_ref)
    position = {r["qa_id"]: i for i, r in enumerate(records)}
    assert {r["qa_id"]: r["duplicate_count"] for r in kept} == {
        r["qa_id"]: sizes_ref[position[r["qa_id"]]] for r in kept
    }
    # near-duplicate mode removes more than the strict reference setting (word edits, appends)
    strict_kept, _ = reference_dedup([r["question"] for r in records])
    assert len(kept) < len(strict_kept)
    assert len(kept) + len(rejects) == len(records)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DedupConfig().bands = 2  # type: ignore[misc]
