"""The LLM tasks of the curation stages: prompt builder + parser each (``pipeline.llm.LLMTask``).

| stage            | prompt                 | adds                                                      | rejects                       |
|------------------|------------------------|-----------------------------------------------------------|-------------------------------|
| refine           | refine_qa              | refineqa_output, refined_question, refined_answer         | parse failures (see parsers)  |
| cot_judge        | judge_cot              | judge_cot_output, judge_cot_result                        | unparseable_verdict           |
| cot_distill      | distill_cot            | distill_cot (null where the judge said YES: no call)      | —                             |
| filter_qa        | filter_qa              | filtering_qa_output                                       | filtered_out, unparseable_verdict |
| reference_answer | reference_answer       | extract_reference_answer_output, reference_answer, reference_answer_source | — (never drops)  |

Field names follow the reference (SPEC-pipeline §12) so its records can be compared with ours.
Each stage's provenance goes to its own ``<stage>_gen`` column (``gen`` stays the extraction's).
The final answer of a row is ``distill_cot`` when present, else ``refined_answer`` (§7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pipeline.curate.config import (
    CotDistillConfig,
    CotJudgeConfig,
    FilterConfig,
    ReferenceAnswerConfig,
    RefineConfig,
)
from pipeline.curate.parsers import ParseFailure, clean_distilled, parse_reference_answer, parse_refined
from pipeline.curate.verdict import parse_verdict
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

PROMPTS = "pipeline.curate.prompts"

UNPARSEABLE_VERDICT = "unparseable_verdict"
FILTERED_OUT = "filtered_out"


def final_answer(row: Mapping[str, Any]) -> str:
    """The answer a row carries forward: the distilled CoT when present, else the refined answer."""
    distilled = row.get("distill_cot")
    return distilled if distilled is not None else (row.get("refined_answer") or "")


def extend_schema(schema: pa.Schema, fields: Sequence[pa.Field], drop: Sequence[str] = ()) -> pa.Schema:
    """``schema`` without ``drop`` and without older copies of ``fields``, then ``fields``."""
    names = {f.name for f in fields} | set(drop)
    return pa.schema([f for f in schema if f.name not in names] + list(fields))


def _one_request(task: LLMTask, prompt: Any, system: str | None, **values: str) -> list[LLMRequest]:
    return [LLMRequest(tuple(prompt.messages(system, **values)), prompt.prompt_id)]


class RefineTask(LLMTask):
    """S3: a self-contained question and an explained, checked answer, given the source chunk."""

    name = "refine_qa"
    id_column = "qa_id"
    input_columns = ("qa_id", "question", "answer", "document")

    def __init__(self, config: RefineConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt(PROMPTS, "refine_qa", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        return _one_request(self, self.prompt, self.system, DOCUMENT=unit["document"] or "",
                            PROBLEM=unit["question"] or "", ANSWER=unit["answer"] or "")  # fmt: skip

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        raw = completions[0].text
        parsed = parse_refined(raw, self.config.parser)
        if isinstance(parsed, ParseFailure):
            return Reject(parsed.reason, parsed.detail, raw)
        row = {k: v for k, v in unit.items() if k != "document"}
        row.update(refineqa_output=raw, refined_question=parsed.question, refined_answer=parsed.answer,
                   refine_gen=provenance(completions))  # fmt: skip
        return [row]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(
            input_schema,
            [pa.field("refineqa_output", pa.string()), pa.field("refined_question", pa.string()),
             pa.field("refined_answer", pa.string()), pa.field("refine_gen", GEN_TYPE)],
            drop=["document"],
        )  # fmt: skip


class CotJudgeTask(LLMTask):
    """S4a: YES = the refined answer already reasons; NO = it only states a result."""

    name = "judge_cot"
    id_column = "qa_id"
    input_columns = ("qa_id", "refined_question", "refined_answer")
    on_truncated = "parse"  # a cut-off judgement has no decision: counted as unparseable

    def __init__(self, config: CotJudgeConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt(PROMPTS, "judge_cot", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        return _one_request(self, self.prompt, self.system, PROBLEM=unit["refined_question"] or "",
                            ANSWER=unit["refined_answer"] or "")  # fmt: skip

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        raw = completions[0].text
        verdict = None if completions[0].truncated else parse_verdict(raw, self.config.verdict)
        if verdict is None:
            return Reject(UNPARSEABLE_VERDICT, "no YES/NO decision in the CoT judgement", raw)
        return [{**unit, "judge_cot_output": raw, "judge_cot_result": verdict,
                 "cot_judge_gen": provenance(completions)}]  # fmt: skip

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(input_schema, [pa.field("judge_cot_output", pa.string()),
                                            pa.field("judge_cot_result", pa.bool_()),
                                            pa.field("cot_judge_gen", GEN_TYPE)])  # fmt: skip


class CotDistillTask(LLMTask):
    """S4b: a step-by-step, boxed answer for rows without reasoning; rows with it pass unchanged."""

    name = "distill_cot"
    id_column = "qa_id"
    input_columns = ("qa_id", "refined_question", "judge_cot_result")

    def __init__(self, config: CotDistillConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt(PROMPTS, "distill_cot", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        if unit["judge_cot_result"]:
            return []  # already reasons: no model call, the row passes as is
        return _one_request(self, self.prompt, self.system, PROBLEM=unit["refined_question"] or "")

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        if not completions:
            return [{**unit, "distill_cot": None, "distill_gen": None}]
        text = clean_distilled(completions[0].text)
        if not text:
            return Reject("empty_distillation", "the model returned no answer", completions[0].text)
        return [{**unit, "distill_cot": text, "distill_gen": provenance(completions)}]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(
            input_schema, [pa.field("distill_cot", pa.string()), pa.field("distill_gen", GEN_TYPE)]
        )


class FilterTask(LLMTask):
    """S5: keep the pair only on a YES (self-consistent, self-contained, really answered)."""

    name = "filter_qa"
    id_column = "qa_id"
    input_columns = ("qa_id", "refined_question", "refined_answer", "distill_cot")
    on_truncated = "parse"

    def __init__(self, config: FilterConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt(PROMPTS, "filter_qa", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        return _one_request(self, self.prompt, self.system, PROBLEM=unit["refined_question"] or "",
                            ANSWER=final_answer(unit))  # fmt: skip

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        raw = completions[0].text
        verdict = None if completions[0].truncated else parse_verdict(raw, self.config.verdict)
        if verdict is None:
            return Reject(UNPARSEABLE_VERDICT, "no YES/NO decision in the filter judgement", raw)
        if not verdict:
            return Reject(FILTERED_OUT, "the quality judge said NO", raw)
        return [{**unit, "filtering_qa_output": raw, "filter_gen": provenance(completions)}]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(input_schema, [pa.field("filtering_qa_output", pa.string()),
                                            pa.field("filter_gen", GEN_TYPE)])  # fmt: skip


class ReferenceAnswerTask(LLMTask):
    """S7: the concise final answer; a failed or cut-off extraction falls back to the answer's box."""

    name = "reference_answer"
    id_column = "qa_id"
    input_columns = ("qa_id", "refined_question", "refined_answer", "distill_cot")

    def __init__(self, config: ReferenceAnswerConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt(PROMPTS, "reference_answer", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None
        self.on_truncated = "parse" if config.on_truncated == "fallback" else "reject"

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        return _one_request(self, self.prompt, self.system, PROBLEM=unit["refined_question"] or "",
                            ANSWER=final_answer(unit))  # fmt: skip

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        raw = completions[0].text
        usable = "" if completions[0].truncated and self.config.parser == "robust" else raw
        parsed = parse_reference_answer(usable, self.config.parser, fallback_answer=final_answer(unit))
        return [{**unit, "extract_reference_answer_output": raw, "reference_answer": parsed.text,
                 "reference_answer_source": parsed.source, "reference_gen": provenance(completions)}]  # fmt: skip

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(input_schema, [pa.field("extract_reference_answer_output", pa.string()),
                                            pa.field("reference_answer", pa.string()),
                                            pa.field("reference_answer_source", pa.string()),
                                            pa.field("reference_gen", GEN_TYPE)])  # fmt: skip
