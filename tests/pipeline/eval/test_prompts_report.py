"""Prompts (families, option order, chat rendering), configs, and the report's arithmetic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline import run_config
from pipeline.benchmarks import registry
from pipeline.config import ConfigError
from pipeline.eval import report
from pipeline.eval.paper import PAPER_BENCHMARKS, PAPER_SCORES
from pipeline.eval.prompts import letter_list, present, render_chat, stop_token_ids_for, user_prompt
from pipeline.eval.runner import subtask_summary

REPO = Path(__file__).resolve().parents[3]


def test_letter_lists_as_the_instruction_writes_them():
    assert letter_list("AB") == "A or B"
    assert letter_list("ABC") == "A, B, or C"
    assert letter_list("ABCDEFGHIJ") == "A, B, C, D, E, F, G, H, I, or J"


def test_option_orders_reference_and_seeded_shuffle(benchmarks_dir: Path):
    items = registry.load("gpqa_diamond", benchmarks_dir)
    assert {present(i, "reference").gold for i in items} == {"D"}
    shuffled = [present(i, "shuffled", seed=0) for i in items]
    golds = Counter(p.gold for p in shuffled)
    assert set(golds) == set("ABCD") and max(golds.values()) < 90  # spread over the letters
    for p in shuffled[:20]:
        assert p.options[ord(p.gold) - 65] == p.item.options[p.item.gold_index]  # the gold follows its text
    again = [present(i, "shuffled", seed=0) for i in items]
    assert [p.permutation for p in again] == [p.permutation for p in shuffled]  # reruns ask the same thing
    other = [present(i, "shuffled", seed=1) for i in items]
    assert [p.permutation for p in other] != [p.permutation for p in shuffled]


def test_prompt_families(benchmarks_dir: Path):
    gpqa = user_prompt(present(registry.load_subtask("gpqa_diamond", benchmarks_dir, limit=1)[0]))
    assert "'Answer: $LETTER'" in gpqa and "one of A, B, C, or D." in gpqa and "\nQuestion: " in gpqa
    assert gpqa.rstrip().endswith("(D) 10^-4 eV")
    chem = present(registry.load_subtask("ChemBench-multi-choise", benchmarks_dir, limit=1)[0])
    assert "A, B, C, D, E, F, G, H, I, or J" in user_prompt(chem) and chem.extraction_letters == "ABCD"
    pubmed = user_prompt(present(registry.load_subtask("PubMedQA", benchmarks_dir, limit=1)[0]))
    assert (
        "Information:\n- " in pubmed
        and "\nQuestion:\n" in pubmed
        and pubmed.endswith("(A) Yes\n(B) No\n(C) Maybe")
    )
    assert "Question: " not in pubmed
    sci_items = registry.load("scibench", benchmarks_dir)
    scaled = next(i for i in sci_items if i.meta["unit_exponent"])
    sci = user_prompt(present(scaled))
    assert f"The unit of the answer is {scaled.meta['unit_prob']}." in sci and "\\boxed{[ANSWER]}" in sci
    assert sci.endswith("Let's think step by step.")
    gsm = user_prompt(present(registry.load_subtask("gsm8k", benchmarks_dir, limit=1)[0]))
    assert gsm.startswith("Question: Janet") and gsm.endswith("within \\boxed{}.")


def test_chat_rendering_thinking_modes(qwen3_tokenizer):
    off = render_chat(qwen3_tokenizer, "Q?", enable_thinking=False)
    assert off == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert render_chat(qwen3_tokenizer, "Q?", enable_thinking=None).endswith("<|im_start|>assistant\n")
    assert stop_token_ids_for("Qwen/Qwen3-1.7B") == [151645, 151643]
    assert stop_token_ids_for("meta-llama/Llama-3.1-8B-Instruct") == [128009]
    assert stop_token_ids_for("Qwen/Qwen2.5-7B-Instruct") is None


def test_paper_averages_are_the_mean_of_the_14():
    for model, scores in PAPER_SCORES.items():
        mean = sum(scores[b] for b in PAPER_BENCHMARKS) / 14
        assert abs(mean - scores["average"]) < 0.015, model


def _rows(subtask: str, benchmark: str, correct: list[bool], order: str = "reference") -> list[dict]:
    return [
        {"benchmark": benchmark, "subtask": subtask, "option_order": order, "correct": c, "correct_flexible": c,
         "extraction_failed": False, "timed_out": False, "error": None, "finish_reason": "stop"}
        for c in correct
    ]  # fmt: skip


def test_composites_are_unweighted_means_and_averages_follow_the_paper():
    rows = (
        _rows("scibench-physics", "scibench", [True] * 1 + [False] * 3)  # 25 %
        + _rows("scibench-chemistry", "scibench", [True] * 3 + [False] * 1)  # 75 %
        + _rows("scibench-math", "scibench", [True] * 10)  # 100 % -> SciBench 66.67, not 14/18 = 77.8
        + _rows("gsm8k", "gsm8k", [True, False])
        + _rows("mmlu", "mmlu", [True])  # evaluated, never averaged
    )
    scores = report.benchmark_scores(subtask_summary(rows))["reference"]
    assert scores["scibench"]["accuracy"] == pytest.approx(200 / 3) and scores["scibench"]["n"] == 18
    avg = report.averages(scores)
    assert avg["general"] == {"value": pytest.approx(200 / 3), "present": 1, "of": 5, "partial": True}
    assert avg["math"]["value"] == pytest.approx(50.0) and avg["all"]["present"] == 2
    assert avg["all"]["value"] == pytest.approx((200 / 3 + 50) / 2)
    # A composite with a subtask missing is reported but kept out of the averages.
    partial = report.benchmark_scores(subtask_summary(_rows("scibench-math", "scibench", [True])))[
        "reference"
    ]
    assert partial["scibench"]["complete"] is False and report.averages(partial)["general"]["value"] is None


def test_markdown_and_chart(tmp_path: Path, benchmarks_dir: Path):
    rows = _rows("gsm8k", "gsm8k", [True, False]) + _rows("gsm8k", "gsm8k", [True, True], order="shuffled")
    scores = report.benchmark_scores(subtask_summary(rows))
    _, missing = registry.availability(benchmarks_dir, ["gsm8k", "math"])
    text = report.markdown(scores, model="m", missing=missing, paper_model="Qwen3-1.7B-M")
    assert "| GSM8K | 2 | 50.00 | 50.00 | 100.00 | 100.00 |" in text
    assert "82.41" in text and "partial: 1/14 present" in text and "math (math): file not found" in text
    report.chart(scores, tmp_path / "scores.png", model="m", paper_model="Qwen3-1.7B-M")
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_configs_load_and_reject_mistakes():
    for path in sorted((REPO / "ray_jobs" / "configs").glob("eval_*.yaml")):
        config = run_config.load(path)
        assert config.stage("evaluate").model in [m.model_id for m in config.stage("serve").models], path
    with pytest.raises(ConfigError, match="unknown"):
        run_config.from_dict({"evaluate": {"benchmarks": ["gpqa"]}})
    with pytest.raises(ConfigError, match="paper_model"):
        run_config.from_dict({"evaluate": {"paper_model": "GPT-9"}})
    with pytest.raises(ConfigError, match="unique"):
        run_config.from_dict({"serve": {"models": [{"model_id": "a", "model_source": "x"}] * 2}})
