"""The curation LLM tasks on literal rows and literal completions (parse is pure)."""

from __future__ import annotations

import pyarrow as pa

from pipeline.curate.config import (
    CotDistillConfig,
    CotJudgeConfig,
    FilterConfig,
    ReferenceAnswerConfig,
    RefineConfig,
)
from pipeline.curate.join import MISSING_CHUNK, attach_documents
from pipeline.curate.tasks import (
    FILTERED_OUT,
    UNPARSEABLE_VERDICT,
    CotDistillTask,
    CotJudgeTask,
    FilterTask,
    ReferenceAnswerTask,
    RefineTask,
    final_answer,
)
from pipeline.llm import Completion, Reject

ROW = {"qa_id": "q1", "chunk_id": "c1", "subject": "physics", "question": "What is g?", "answer": "9.8"}


def done(text: str, finish: str = "stop") -> Completion:
    return Completion(text=text, finish_reason=finish, prompt_tokens=10, completion_tokens=5, model="m",
                      engine="vllm", prompt="p@v1")  # fmt: skip


def test_refine_task_builds_one_request_with_the_document_and_parses():
    task = RefineTask(RefineConfig())
    unit = {**ROW, "document": "Near Earth's surface g = 9.8 m/s^2."}
    (request,) = task.requests(unit)
    assert request.prompt == "refine_qa@v1"
    assert [m["role"] for m in request.messages] == ["system", "user"]
    user = request.messages[1]["content"]
    assert "`Near Earth's surface g = 9.8 m/s^2.`" in user and "`What is g?`" in user and "`9.8`" in user
    out = task.parse(unit, [done("ok\nRefined Question: What is the value of g near Earth?\n"
                                 "Refined Answer: About 9.8 m/s^2, from Newton's law of gravitation.")])  # fmt: skip
    assert isinstance(out, list) and "document" not in out[0]
    assert out[0]["refined_question"] == "What is the value of g near Earth?"
    assert out[0]["refine_gen"]["prompt"] == "p@v1"
    assert task.parse(unit, [done("no markers")]) == Reject(
        "no_answer_marker", "no 'Refined Answer:' line in the output", "no markers"
    )
    schema = task.output_schema(pa.schema([(k, pa.string()) for k in unit]))
    assert "document" not in schema.names and schema.names[-1] == "refine_gen"


def test_cot_judge_verdicts_and_truncation():
    task = CotJudgeTask(CotJudgeConfig())
    unit = {**ROW, "refined_question": "Q", "refined_answer": "A"}
    assert task.parse(unit, [done("Analysis: x\nDecision: **NO**")])[0]["judge_cot_result"] is False
    assert task.parse(unit, [done("Analysis: x\nDecision: YES")])[0]["judge_cot_result"] is True
    assert task.parse(unit, [done("Analysis: it does")]).reason == UNPARSEABLE_VERDICT
    # a cut-off output never counts, even if a verdict word appears in it
    assert (
        task.parse(unit, [done("Analysis: Decision: YES is tempting but", "length")]).reason
        == UNPARSEABLE_VERDICT
    )
    # the reference parser's Note bug, selectable
    ref = CotJudgeTask(CotJudgeConfig(verdict="reference"))
    assert ref.parse(unit, [done("Decision: **YES**\nNote: brief")])[0]["judge_cot_result"] is False


def test_cot_distill_calls_the_model_only_without_reasoning():
    task = CotDistillTask(CotDistillConfig())
    with_cot = {**ROW, "refined_question": "Q", "refined_answer": "A because B", "judge_cot_result": True}
    without = {**with_cot, "judge_cot_result": False}
    assert task.requests(with_cot) == []
    assert task.parse(with_cot, [])[0]["distill_cot"] is None
    (request,) = task.requests(without)
    assert [m["role"] for m in request.messages] == ["user"]  # no system message, as the reference
    assert request.messages[0]["content"].startswith("Q\nPlease reason step by step")
    out = task.parse(without, [done("<think>hmm</think>Step 1 ... \\boxed{2}")])[0]
    assert out["distill_cot"] == "Step 1 ... \\boxed{2}"
    assert final_answer(out) == out["distill_cot"] and final_answer(with_cot) == "A because B"
    assert task.parse(without, [done("<think>unfinished")]).reason == "empty_distillation"


def test_filter_keeps_only_yes():
    task = FilterTask(FilterConfig())
    unit = {**ROW, "refined_question": "Q", "refined_answer": "A", "distill_cot": "D"}
    assert "`D`" in task.requests(unit)[0].messages[1]["content"]  # the distilled answer is judged
    assert task.parse(unit, [done("Analysis:\nfine\nDecision:\nYES")])[0]["filtering_qa_output"]
    assert task.parse(unit, [done("Decision: NO")]).reason == FILTERED_OUT
    assert task.parse(unit, [done("")]).reason == UNPARSEABLE_VERDICT


def test_reference_answer_never_drops():
    task = ReferenceAnswerTask(ReferenceAnswerConfig())
    unit = {**ROW, "refined_question": "Q", "refined_answer": "so $\\boxed{42}$", "distill_cot": None}
    assert task.on_truncated == "parse"
    assert task.parse(unit, [done("Reference Answer: 42")])[0]["reference_answer"] == "42"
    cut = task.parse(unit, [done("Reference Answer: 4", "length")])[0]
    assert (cut["reference_answer"], cut["reference_answer_source"]) == ("42", "answer_boxed")


def test_attach_documents_joins_by_chunk_id_and_rejects_missing():
    qa = pa.Table.from_pylist([{**ROW, "qa_id": "a", "chunk_id": "c1"}, {**ROW, "qa_id": "b", "chunk_id": "c9"},
                               {**ROW, "qa_id": "c", "chunk_id": "c2"}])  # fmt: skip
    data, rejects, result = attach_documents(qa, {"c1": "one", "c2": "two"}, "/x/dedup/data/s0.parquet")
    assert data["qa_id"].to_pylist() == ["a", "c"] and data["document"].to_pylist() == ["one", "two"]
    assert rejects["input_id"].to_pylist() == ["b"] and rejects["reason"].to_pylist() == [MISSING_CHUNK]
    assert (result.shard, result.in_rows, result.passed, result.rejected) == ("s0", 3, 2, {MISSING_CHUNK: 1})
