"""The extraction job end to end on real textbook chunks and a local Ray cluster.

- With the real vLLM CPU engine through Ray Data LLM (slow): plumbing, accounting, provenance.
- With a scripted engine (stage logic only): every outcome kind, rerun no-op, ``--force``
  re-parsing from the cache, and kill-and-resume regenerating only unfinished prompts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline import run_config as rc
from pipeline.extract.task import ExtractQATask
from pipeline.llm.cache import CompletionCache
from ray_jobs import extract_qa
from ray_jobs.llm_stage import run_llm_stage
from tests.pipeline.llm.helpers import chunks_from_pdf, scripted_engine, served_keys, write_stage

PHYSICS_PDF = "physics_ostp_intro_physics_ch_gauss_potential_2019-06.pdf"
CHEMISTRY_PDF = "chem_evangelista_quantum_chem_lab_ch10_thermochemistry.pdf"


def _config(tmp_path: Path, name: str, **extract: object) -> rc.RunConfig:
    data = {"run": {"name": name, "root": str(tmp_path / "runs")}, "extract_qa": extract}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return rc.load(path)


def _write_chunks(config: rc.RunConfig, textbooks_dir: Path, per_shard: int = 3) -> dict[str, list[dict]]:
    shards = {
        "physics": chunks_from_pdf(textbooks_dir / PHYSICS_PDF, "physics", per_shard),
        "chemistry": chunks_from_pdf(textbooks_dir / CHEMISTRY_PDF, "chemistry", per_shard, first_page=1),
    }
    write_stage(config.run_dir.stage("chunk"), shards)
    return shards


# A deterministic "model": the outcome depends on the unit (chunk, standard) only.
OUTCOMES = [
    lambda n: {
        "text": f"Question: What is item {n}?\nAnswer: It is {n}.\n\nQuestion: Why {n}?\nAnswer: Because."
    },
    lambda n: {"text": "[NO QA]"},
    lambda n: {"text": "I could not find anything useful in this passage."},
    lambda n: {"text": f"**Question 1:** Derive {n}.\n**Answer:** Start from", "finish_reason": "length"},
    lambda n: {"text": f"### Question\nCompute {n}.\n### Answer\n{n} squared."},
]


def respond(row: dict) -> dict:
    n = int(row["key"], 16) % 1000
    return OUTCOMES[int(row["unit_id"].encode().hex(), 16) % len(OUTCOMES)](n)


def test_extract_qa_scripted_engine_accounting_rerun_and_force(tmp_path, ray_cluster, textbooks_dir):
    config = _config(tmp_path, "scripted", engine={"model": "scripted-model"}, sampling={"max_tokens": 64})
    shards = _write_chunks(config, textbooks_dir)
    log = tmp_path / "served.log"
    task = ExtractQATask(config.stage("extract_qa"))
    stats = run_llm_stage(config, "extract_qa", task, engine_fn=scripted_engine(respond, log))

    n_units = 2 * sum(len(rows) for rows in shards.values())
    assert stats["in"] == n_units == len(served_keys(log))
    assert stats["passed"] + stats["rejected_total"] == n_units
    stage = config.run_dir.stage("extract_qa")
    table = stage.read_table()
    rejects = stage.read_rejects()
    assert table.num_rows == stats["out"] and rejects.num_rows == stats["rejected_total"]
    assert len(set(table["qa_id"].to_pylist())) == table.num_rows

    # Every unit's outcome is the scripted one.
    expected_out, expected_rejects = 0, {}
    for rows in shards.values():
        for row in rows:
            for standard in ("high", "low"):
                kind = int(f"{row['chunk_id']}:{standard}".encode().hex(), 16) % len(OUTCOMES)
                expected_out += {0: 2, 4: 1}.get(kind, 0)
                reason = {1: "no_qa", 2: "malformed", 3: "truncated"}.get(kind)
                if reason:
                    expected_rejects[reason] = expected_rejects.get(reason, 0) + 1
    assert stats["out"] == expected_out
    assert stats["rejected"] == expected_rejects
    for reject in rejects.to_pylist():
        assert reject["stage"] == "extract_qa" and reject["raw"]
        assert reject["input_id"].split(":")[1] in ("high", "low")

    # Provenance and lineage.
    chunk_ids = {r["chunk_id"]: r for rows in shards.values() for r in rows}
    for row in table.to_pylist():
        assert row["chunk_id"] in chunk_ids and row["subject"] == chunk_ids[row["chunk_id"]]["subject"]
        gen = row["gen"]
        assert gen["model"] == "scripted-model" and gen["finish_reason"] == "stop"
        assert gen["prompt"] == f"qa_extraction_{row['subject']}_{row['standard']}@v1"
        assert json.loads(gen["sampling"])["max_tokens"] == 64
        assert gen["prompt_tokens"] > 100 and gen["completion_tokens"] > 0

    # A finished stage is a no-op; --force re-parses cached completions without generating.
    assert run_llm_stage(config, "extract_qa", task, engine_fn=scripted_engine(respond, log)) is None
    forced = run_llm_stage(config, "extract_qa", task, force=True, engine_fn=scripted_engine(respond, log))
    assert len(served_keys(log)) == n_units
    assert forced["out"] == stats["out"] and forced["generated_this_run"] == 0


def test_extract_qa_killed_run_resumes_without_regenerating(tmp_path, ray_cluster, textbooks_dir):
    # batch_size 1: each request is its own engine batch, so finished ones reach the cache early.
    killed = _config(
        tmp_path, "killed", engine={"model": "scripted-model", "batch_size": 1}, cache_flush_rows=1
    )
    _write_chunks(killed, textbooks_dir)
    task = ExtractQATask(killed.stage("extract_qa"))
    victim = (
        f"{chunks_from_pdf(textbooks_dir / CHEMISTRY_PDF, 'chemistry', 3, first_page=1)[-1]['chunk_id']}:low"
    )

    def dying(row: dict) -> dict:
        if row["unit_id"] == victim:
            time.sleep(10)  # let the other in-flight requests come back first, as in a real crash
            raise RuntimeError("engine died")
        return respond(row)

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with pytest.raises(Exception, match="engine died"):
        run_llm_stage(killed, "extract_qa", task, engine_fn=scripted_engine(dying, first_log, batch_size=1))
    cache = CompletionCache.for_stage(killed.run_dir.uri, "extract_qa", "scripted-model")
    cached = cache.keys()
    assert 0 < len(cached) < 12
    assert not killed.run_dir.stage("extract_qa").is_complete()

    stats = run_llm_stage(killed, "extract_qa", task, engine_fn=scripted_engine(respond, second_log))
    regenerated = served_keys(second_log)
    assert not set(regenerated) & cached, "a cached completion was generated again"
    assert len(regenerated) + len(cached) == stats["in"] == 12
    assert stats["generated_this_run"] == len(regenerated)

    # Same result as a run that was never interrupted.
    clean = _config(tmp_path, "clean", engine={"model": "scripted-model"})
    _write_chunks(clean, textbooks_dir)
    clean_stats = run_llm_stage(clean, "extract_qa", task, engine_fn=scripted_engine(respond))
    rows = lambda c: sorted(  # noqa: E731
        (r["qa_id"], r["question"], r["answer"])
        for r in c.run_dir.stage("extract_qa").read_table().to_pylist()
    )
    assert rows(killed) == rows(clean)
    assert {k: stats[k] for k in ("in", "out", "rejected")} == {
        k: clean_stats[k] for k in ("in", "out", "rejected")
    }


@pytest.mark.slow
def test_extract_qa_job_with_real_vllm_cpu_engine(tmp_path, ray_cluster, textbooks_dir, tiny_model_dir):
    """The job's main() on 3 physics chunks (6 prompts) with vLLM CPU through Ray Data LLM."""
    config = _config(
        tmp_path,
        "vllm",
        engine={
            "kind": "vllm",
            "model": str(tiny_model_dir),
            "batch_size": 4,
            "max_model_len": 2048,
            "enforce_eager": True,
            "dtype": "bfloat16",
            "max_num_seqs": 8,
        },
        sampling={"max_tokens": 32},
        subjects=["physics"],
    )
    shards = {"physics": chunks_from_pdf(textbooks_dir / PHYSICS_PDF, "physics", 3)}
    write_stage(config.run_dir.stage("chunk"), shards)
    stats = extract_qa.main(["--config", config.source])

    assert stats["in"] == 6 and stats["passed"] + stats["rejected_total"] == 6
    assert stats["counters"]["requests"] == 6 and stats["generated_this_run"] == 6
    assert stats["counters"]["prompt_tokens"] > 6 * 300  # real prompts went in: instruction + chunk
    assert 0 < stats["counters"]["completion_tokens"] <= 6 * 32
    stage = config.run_dir.stage("extract_qa")
    rejects = stage.read_rejects().to_pylist()
    # A random model rarely ends on its own within 32 tokens: such outputs must be flagged
    # truncated and kept raw, never parsed as complete.
    for reject in rejects:
        assert reject["reason"] in {"truncated", "no_qa", "malformed", "no_answer", "empty_output"}
        if reject["reason"] == "truncated":
            assert reject["raw"] is not None and "finish_reason=length" in reject["detail"]
    assert stats["counters"].get("finish_length", 0) == stats["rejected"].get("truncated", 0)
    cache = CompletionCache.for_stage(config.run_dir.uri, "extract_qa", str(tiny_model_dir))
    entries = list(cache.lookup().values())
    assert len(entries) == 6
    for entry in entries:
        assert entry["prompt_id"] in ("qa_extraction_physics_high@v1", "qa_extraction_physics_low@v1")
        assert entry["finish_reason"] in ("stop", "length") and entry["completion_tokens"] <= 32
        assert entry["model"] == str(tiny_model_dir)
    data = pq.read_table(stage.data_file("physics"))
    assert data.schema.field("gen") is not None
    # Rerun: nothing left to do.
    assert extract_qa.main(["--config", config.source]) is None


@pytest.mark.parametrize("name", ["extract_cpu.yaml", "extract_gpu.yaml", "extract_openai.yaml"])
def test_shipped_extract_configs_load(name):
    config = rc.load(Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / name)
    stage = config.stage("extract_qa")
    assert stage.input_stage == "chunk" and stage.standards == ("high", "low")
    assert stage.engine.kind == ("openai" if "openai" in name else "vllm")
