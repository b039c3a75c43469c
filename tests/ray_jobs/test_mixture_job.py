"""The mixture job end to end on a local Ray: three sources (a stage of the run, a JSONL file, a
Parquet file) through the shared dedup and decontamination retrieval, then random / length / all
selection. ``min_similarity`` above 1 leaves the LLM judge nothing to ask, so no engine starts
(the judge itself runs on a real engine in test_curation_chain.py)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.dedup.synthetic import generate_questions
from pipeline.rundir import stable_id

pytestmark = pytest.mark.slow


def test_mixture_job(ray_cluster, tmp_path, benchmarks_dir):
    from pipeline import run_config as rc
    from ray_jobs import mixture
    from tests.pipeline.llm.helpers import write_stage

    records = list(generate_questions(90, seed=9, duplicate_rate=0.0, short_rate=0.0))
    textbook = [{"qa_id": r["qa_id"], "question": r["question"], "answer": r["answer"], "subject": r["subject"],
                 "reference_answer": "42"} for r in records[:30]]  # fmt: skip
    nr = tmp_path / "nr.jsonl"
    nr.write_text("\n".join(json.dumps({"question": r["question"], "responses": [r["answer"] * (i % 5 + 1)]})
                            for i, r in enumerate(records[30:60])))  # fmt: skip
    # one exact copy of a textbook question: the joint dedup keeps it once
    nr.write_text(
        nr.read_text() + "\n" + json.dumps({"question": records[0]["question"], "responses": ["x y z"]})
    )
    nemo = tmp_path / "nemo.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": r["question"], "answer": r["answer"], "subject": "chemistry"}
                                         for r in records[60:]]), nemo)  # fmt: skip
    config_path = tmp_path / "mix.yaml"
    config_path.write_text(yaml.safe_dump({
        "run": {"name": "mix", "root": str(tmp_path / "runs")},
        "mixture": {
            "seed": 3,
            "sources": [
                {"name": "textbook", "path": "stage:finalize", "selection": "all"},
                {"name": "natural", "path": str(nr), "answer_field": "responses", "reference_field": None,
                 "subject": "general", "selection": "length", "k": 10},
                {"name": "nemotron", "path": str(nemo), "reference_field": None, "selection": "random", "k": 12},
            ],
            "retrieve": {"benchmarks_dir": str(benchmarks_dir), "embedding_model": "builtin:all-minilm-l6-v2",
                         "batch_size": 64, "top_k": 2},
        },
        "mixture_decontaminate": {"min_similarity": 1.01},
    }))  # fmt: skip
    config = rc.load(config_path)
    write_stage(config.run_dir.stage("finalize"), {"part-000": textbook},
                schema=pa.Table.from_pylist(textbook).schema)  # fmt: skip

    # the copy kept is the one with the lower id (either source)
    copy_id = stable_id("natural", records[0]["question"], "x y z")
    textbook_kept = 30 if records[0]["qa_id"] < copy_id else 29

    stats = mixture.main(["--config", str(config_path)])
    assert stats["in"] == 90 and stats["passed"] == textbook_kept + 10 + 12, stats
    table = config.run_dir.stage("mixture").read_table()
    counts = {s: table["source"].to_pylist().count(s) for s in ("textbook", "natural", "nemotron")}
    assert counts == {"textbook": textbook_kept, "natural": 10, "nemotron": 12}
    assert set(table["selection"].to_pylist()) == {"all", "length", "random"}
    dedup = config.run_dir.stage("mixture_dedup").read_stats()
    assert dedup["rejected"] == {"near_duplicate": 1} and dedup["in"] == 91
    for name in ("mixture_sources", "mixture_dedup", "mixture_retrieve", "mixture_decontaminate", "mixture"):
        s = config.run_dir.stage(name).read_stats()
        assert s["in"] == s["passed"] + s["rejected_total"], name
    # natural: the 10 longest answers; the others are rejects of the selection
    natural = [r for r in table.to_pylist() if r["source"] == "natural"]
    rejected = config.run_dir.stage("mixture").read_rejects().to_pylist()
    assert {r["reason"] for r in rejected} == {"not_selected"}
    assert min(r["length"] for r in natural) > 0
    assert mixture.main(["--config", str(config_path)]) is None  # finished: a no-op
