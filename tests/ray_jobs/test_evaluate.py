"""``ray_jobs.evaluate`` end to end: deploy the Serve app, evaluate real items, report, remove the app.

One run on the tiny random Qwen3 (vLLM CPU behind Ray Serve LLM): two benchmarks, two items per
subtask, both option orders. Then the rerun is a no-op, and a forced rerun rescores from the
response cache without deploying a server at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import run_config

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, benchmarks_dir: Path, tiny_model_dir: Path):
    return run_config.from_dict(
        {
            "run": {"name": "eval-job", "root": str(tmp_path / "runs")},
            "serve": {
                "app_name": "test-evaluate-job",
                "models": [
                    {
                        "model_id": "tiny",
                        "model_source": str(tiny_model_dir),
                        "max_model_len": 2048,
                        "max_num_seqs": 8,
                        "dtype": "bfloat16",
                    }
                ],
            },
            "evaluate": {
                "benchmarks": ["cs_bench", "math500", "mmlu_pro"],
                "data_dir": str(benchmarks_dir),
                "limit": 2,
                "model": "tiny",
                "tokenizer": str(tiny_model_dir),
                "option_orders": ["reference", "shuffled"],
                "sampling": {"max_tokens": 8},
                "concurrency": 2,
                "scoring_workers": 1,
                "paper_model": "Qwen3-1.7B-M",
            },
        }
    )


def test_evaluate_job_deploys_scores_reports_and_tears_down(
    ray_cluster, tmp_path, benchmarks_dir, tiny_model_dir
):
    from ray import serve

    from ray_jobs import evaluate

    config = _config(tmp_path, benchmarks_dir, tiny_model_dir)
    stats = evaluate.run(config)
    out = Path(config.run_dir.path) / "evaluate"
    # CS-Bench: 2 subtasks x 2 items x 2 orders; MATH500: 2 items x 2 orders; MMLU-Pro: missing here.
    assert stats["in"] == stats["out"] == 12 and stats["rejected_total"] == 0
    # MATH500 prompts are the same in both orders, and so is a 2-option shuffle that keeps the order.
    sent = stats["generation"]["sent"]
    assert 8 <= sent == stats["generation"]["requested"] <= 8 + 2
    assert any(m.startswith("mmlu_pro") for m in stats["missing"])
    rows = [json.loads(line) for line in (out / "predictions" / "cs_bench.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {"prompt", "output", "extracted", "gold", "correct"} <= set(rows[0])
    text = (out / "report.md").read_text()
    assert "| CS-Bench | 4 |" in text and "MMLU-Pro" not in text.split("## Missing")[0]
    assert "mmlu_pro (mmlu_pro): file not found" in text
    assert (out / "scores.png").stat().st_size > 0 and json.loads((out / "scores.json").read_text())[
        "benchmarks"
    ]
    assert "test-evaluate-job" not in serve.status().applications  # removed what it deployed

    assert evaluate.run(config) == stats  # a finished stage is a no-op
    forced = evaluate.run(config, force=True)  # rescored from the response cache: no server needed
    assert forced["generation"] == {"requested": sent, "cached": sent, "sent": 0}
    assert forced["scores"] == stats["scores"]
