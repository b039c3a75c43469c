"""Exact top-k search and the judge task's keep/drop rule (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.curate.tasks import UNPARSEABLE_VERDICT
from pipeline.decontam.config import DecontaminateConfig
from pipeline.decontam.judge import CONTAMINATED, DecontamJudgeTask
from pipeline.decontam.search import top_k
from pipeline.llm import Completion


def normalized(rng, n, d=16):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_k_equals_a_full_sort():
    rng = np.random.default_rng(0)
    index, queries = normalized(rng, 500), normalized(rng, 70)
    scores, ids = top_k(queries, index, 5, batch_size=16)
    full = queries @ index.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), rtol=1e-6)


def test_top_k_ties_small_index_and_bad_shapes():
    index = np.eye(3, dtype=np.float32)[[0, 0, 1]]  # rows 0 and 1 identical
    scores, ids = top_k(np.array([[1, 0, 0]], dtype=np.float32), index, 5)
    assert ids.tolist() == [[0, 1, 2]] and scores.shape == (1, 3)  # k capped at the index size; ties by id
    with pytest.raises(ValueError, match="shapes do not match"):
        top_k(np.zeros((1, 2), np.float32), index, 2)
    assert top_k(np.zeros((0, 3), np.float32), index, 2)[1].shape == (0, 2)


def cand(i, score):
    return {
        "benchmark": "gsm8k",
        "item_id": f"gsm8k-{i}",
        "question": f"benchmark question {i}",
        "similarity_score": score,
    }


def comp(text, finish="stop"):
    return Completion(text=text, finish_reason=finish, model="m", engine="vllm", prompt="decontam_judge@v1")


UNIT = {
    "qa_id": "q",
    "refined_question": "training question",
    "retrieved_benchmark": [cand(i, 0.9 - i / 10) for i in range(5)],
}


def test_judge_fans_out_one_request_per_candidate():
    task = DecontamJudgeTask(DecontaminateConfig())
    requests = task.requests(UNIT)
    assert len(requests) == 5
    assert "`benchmark question 3`" in requests[3].messages[1]["content"]
    assert "`training question`" in requests[3].messages[1]["content"]


def test_judge_keep_drop_rule():
    task = DecontamJudgeTask(DecontaminateConfig())
    no = [comp("Analysis: different.\nDecision: NO")] * 5
    kept = task.parse(UNIT, no)[0]
    assert kept["decontamination_res"] is False
    assert [c["verdict"] for c in kept["retrieved_benchmark"]] == [False] * 5
    # any YES drops the row; the reject detail lists the hit for the report
    one_yes = [*no[:2], comp("Decision: **YES**"), *no[3:]]
    reject = task.parse(UNIT, one_yes)
    assert reject.reason == CONTAMINATED
    assert [h["item_id"] for h in json.loads(reject.detail)["hits"]] == ["gsm8k-2"]
    # unreadable or cut-off verdicts are skipped; all five unreadable drops the row
    mixed = [comp("hmm")] * 4 + [comp("Decision: NO")]
    assert task.parse(UNIT, mixed)[0]["retrieved_benchmark"][0]["verdict"] is None
    assert (
        task.parse(UNIT, [comp("hmm")] * 4 + [comp("Decision: NO", "length")]).reason == UNPARSEABLE_VERDICT
    )


def test_min_similarity_skips_weak_candidates():
    task = DecontamJudgeTask(DecontaminateConfig(min_similarity=0.65))
    assert len(task.requests(UNIT)) == 3  # scores 0.9, 0.8, 0.7
    out = task.parse(UNIT, [comp("Decision: NO")] * 3)[0]
    assert [c["judge_output"] is None for c in out["retrieved_benchmark"]] == [
        False,
        False,
        False,
        True,
        True,
    ]
