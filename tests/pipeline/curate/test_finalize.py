"""Finalize (release table + dataset card, read back with `datasets`) and the funnel."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline.curate.config import FinalizeConfig
from pipeline.curate.finalize import EMPTY_FIELD, Finalizer, write_card
from pipeline.funnel import collect_funnel, format_funnel, plot_funnel
from pipeline.rundir import RunDir, ShardResult, merge_results

ROWS = [
    {"qa_id": "a", "chunk_id": "c1", "doc_id": "d1", "cluster_id": "a", "subject": "physics",
     "refined_question": "Q1?", "refined_answer": "R1", "distill_cot": "D1 \\boxed{1}", "reference_answer": "1"},
    {"qa_id": "b", "chunk_id": "c1", "doc_id": "d1", "cluster_id": "b", "subject": "chemistry",
     "refined_question": "Q2?", "refined_answer": "R2 because X", "distill_cot": None, "reference_answer": "X"},
    {"qa_id": "c", "chunk_id": "c2", "doc_id": "d1", "cluster_id": "c", "subject": "physics",
     "refined_question": "  ", "refined_answer": "R3", "distill_cot": None, "reference_answer": "3"},
]  # fmt: skip


def make_run(tmp_path) -> RunDir:
    run = RunDir(str(tmp_path), "r")
    for name, n_in, n_out, rejected in [("extract_qa", 10, 8, {"no_qa": 2}), ("dedup", 8, 6, {"near_duplicate": 2}),
                                        ("reference_answer", 3, 3, {})]:  # fmt: skip
        stage = run.stage(name)
        table = pa.Table.from_pylist(ROWS if name == "reference_answer" else [{"x": 1}] * n_out)
        stage.write_shard(
            ShardResult(shard="s0", in_rows=n_in, out_rows=n_out, passed=n_out, rejected=rejected), table
        )
        stage.finish("fp", 1.0, {"model": "tiny", "prompt": f"{name}@v1"})
    return run


def test_finalize_release_table_card_and_funnel(tmp_path):
    run = make_run(tmp_path)
    cfg = FinalizeConfig()
    stage = run.stage("finalize")
    source = run.stage("reference_answer").data_files()[0]
    result = Finalizer(run.uri, cfg)({"shard": "s0", "path": source})
    assert (result.in_rows, result.passed, result.rejected) == (3, 2, {EMPTY_FIELD: 1})
    card = write_card(run, cfg, stage, merge_results("finalize", stage.shard_results(), 0.1))
    stage.finish("fp", 0.1)

    import datasets

    ds = datasets.load_dataset("parquet", data_files=f"{stage.data_path}/*.parquet", split="train")
    assert ds.column_names[:4] == ["question", "answer", "subject", "reference_answer"]
    assert ds["answer"] == ["D1 \\boxed{1}", "R2 because X"]  # the distilled CoT wins where present
    assert ds["qa_id"] == ["a", "b"] and ds["chunk_id"] == ["c1", "c1"]
    text = Path(card).read_text()
    assert "| dedup | 8 | 6 | 2 | near_duplicate: 2 | tiny | dedup@v1 |" in text
    assert "| finalize | 3 | 2 | 1 | empty_field: 1 |" in text
    assert "| physics | 1 |" in text and "load_dataset" in text

    rows = collect_funnel(run)
    assert [r["stage"] for r in rows] == ["extract_qa", "dedup", "reference_answer", "finalize"]
    assert [r["out"] for r in rows] == [8, 6, 3, 2]
    table = format_funnel(rows)
    assert "near_duplicate=2" in table.splitlines()[3]
    png = plot_funnel(rows, str(tmp_path / "funnel.png"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
