"""Difficulty grading for the mixture: sampled student answers, then 0–10 grades against the
reference answer (SPEC-pipeline §16 steps 2–5).

``StudentAnswerTask`` asks for ``n`` step-by-step answers per question (one request each, seeds
0..n-1, so sampling is reproducible); ``GradeTask`` grades each of them and stores the parsed
scores (``difficulty_scores``, -1 for an unreadable grade) and their mean over valid ones
(``difficulty_mean``). Rows without a reference answer use the box of their own answer, then the
answer itself (the reference extracts one with the S7 stage first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pipeline.curate.parsers import clean_distilled, last_boxed, parse_score
from pipeline.curate.tasks import extend_schema
from pipeline.llm import (
    GEN_TYPE,
    SYSTEM_PROMPT,
    Completion,
    LLMRequest,
    LLMTask,
    Reject,
    load_prompt,
    provenance,
)
from pipeline.mixture.config import GradeConfig, StudentAnswerConfig
from pipeline.mixture.select import mean_valid_score

PROMPTS = "pipeline.mixture.prompts"


def reference_for(row: Mapping[str, Any]) -> str:
    if row.get("reference_answer"):
        return row["reference_answer"]
    return last_boxed(row.get("answer") or "") or (row.get("answer") or "")


class StudentAnswerTask(LLMTask):
    name = "student_answer"
    id_column = "qa_id"
    input_columns = ("qa_id", "question", "source")
    on_truncated = "parse"  # a cut-off answer is still graded (it will score low)

    def __init__(self, config: StudentAnswerConfig, samples: int, sources: set[str] | None = None):
        self.config = config
        self.sources = sources  # only rows of these sources are sampled (None: all)
        self.version = config.prompt_version
        self.samples = samples
        self.prompt = load_prompt(PROMPTS, "student_answer", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        if self.sources is not None and unit.get("source") not in self.sources:
            return []  # a source selected by another rule: no model call
        messages = tuple(self.prompt.messages(self.system, PROBLEM=unit["question"] or ""))
        return [LLMRequest(messages, self.prompt.prompt_id, {"seed": i}) for i in range(self.samples)]

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        if not completions:
            return [{**unit, "student_answers": None, "student_gen": None}]
        return [{**unit, "student_answers": [clean_distilled(c.text) for c in completions],
                 "student_gen": provenance(completions)}]  # fmt: skip

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(input_schema, [pa.field("student_answers", pa.list_(pa.string())),
                                            pa.field("student_gen", GEN_TYPE)])  # fmt: skip


class GradeTask(LLMTask):
    name = "grade_answer"
    id_column = "qa_id"
    input_columns = ("qa_id", "question", "answer", "reference_answer", "student_answers")
    on_truncated = "parse"  # a cut-off grade parses as -1 (invalid) unless a score came first

    def __init__(self, config: GradeConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt(PROMPTS, "grade_answer", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        reference = reference_for(unit)
        return [
            LLMRequest(tuple(self.prompt.messages(self.system, QUESTION=unit["question"] or "", REFERENCE_ANSWER=reference,
                                                  STUDENT_ANSWER=answer or "")), self.prompt.prompt_id)
            for answer in unit["student_answers"] or []
        ]  # fmt: skip

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        if not completions:  # not a difficulty source
            return [{**unit, "difficulty_scores": None, "difficulty_mean": None, "grade_gen": None}]
        scores = [parse_score(c.text) for c in completions]
        return [{**unit, "difficulty_scores": scores, "difficulty_mean": mean_valid_score(scores),
                 "grade_gen": provenance(completions) if completions else None}]  # fmt: skip

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(input_schema, [pa.field("difficulty_scores", pa.list_(pa.int32())),
                                            pa.field("difficulty_mean", pa.float64()),
                                            pa.field("grade_gen", GEN_TYPE)])  # fmt: skip
