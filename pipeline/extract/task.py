"""QA extraction as an LLM task: chunk × standard → prompt → ``Question:``/``Answer:`` pairs.

A chunk becomes one work unit per configured standard (``<chunk_id>:<standard>``). Each unit is
sent through the prompt of its chunk's subject and standard; the output is parsed into pairs
(:mod:`pipeline.extract.parser`). A unit with pairs yields one :data:`QA_SCHEMA` row per pair; a
unit without yields a reject: ``no_qa`` (the model said ``[NO QA]``, counted, expected for
prefaces and indexes), ``no_answer``, ``malformed``, ``empty_output``, ``truncated``,
``engine_error`` or ``subject_skipped`` (raw model text kept in the rejects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pipeline.extract.config import ExtractQAConfig
from pipeline.extract.parser import parse_qa_blocks, parse_qa_reference
from pipeline.llm.prompts import SYSTEM_PROMPT, PromptTemplate, load_prompt
from pipeline.llm.task import GEN_TYPE, Completion, LLMRequest, LLMTask, Reject
from pipeline.rundir import stable_id
from pipeline.schema import SUBJECTS

PROMPT_PACKAGE = "pipeline.extract.prompts"
SUBJECT_SKIPPED = "subject_skipped"
UNKNOWN_SUBJECT = "unknown_subject"

# extract_qa -> qa_raw: one row per extracted pair.
QA_SCHEMA = pa.schema(
    [
        ("qa_id", pa.string()),  # stable_id(chunk_id, standard, qa_index)
        ("chunk_id", pa.string()),  # lineage: the chunk it was extracted from
        ("doc_id", pa.string()),
        ("subject", pa.string()),
        ("standard", pa.string()),  # high | low
        ("qa_index", pa.int32()),  # position of the pair in the model output
        ("question", pa.string()),
        ("answer", pa.string()),
        ("parser", pa.string()),  # robust | reference
        ("raw_output", pa.string()),  # the model's whole output (null unless keep_raw_output)
        ("gen", GEN_TYPE),
    ]
)


def prompt_name(subject: str, standard: str) -> str:
    return f"qa_extraction_{subject}_{standard}"


def load_extraction_prompts(version: str = "v1") -> dict[tuple[str, str], PromptTemplate]:
    """All 14 prompts (7 subjects × high/low) of a version, keyed by (subject, standard)."""
    return {
        (subject, standard): load_prompt(PROMPT_PACKAGE, prompt_name(subject, standard), version)
        for subject in SUBJECTS
        for standard in ("high", "low")
    }


class ExtractQATask(LLMTask):
    """The QA-extraction stage's prompt builder and parser."""

    name = "qa_extraction"
    version = "v1"
    id_column = "chunk_id"
    input_columns = ("chunk_id", "subject", "text")

    def __init__(self, config: ExtractQAConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompts = load_extraction_prompts(config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None
        self.subjects = frozenset(config.subjects or SUBJECTS)
        # The reference parses whatever came back, truncated or not.
        self.on_truncated = "parse" if config.parser == "reference" else "reject"

    def expand(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{**row, "standard": standard} for standard in self.config.standards]

    def unit_id(self, unit: Mapping[str, Any]) -> str:
        return f"{unit['chunk_id']}:{unit['standard']}"

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        subject = unit.get("subject")
        if subject not in SUBJECTS or subject not in self.subjects:
            return []  # rejected by parse without a model call
        prompt = self.prompts[(subject, unit["standard"])]
        return [LLMRequest(tuple(prompt.messages(self.system, EXAMPLE=unit["text"] or "")), prompt.prompt_id)]

    def parse(
        self, unit: Mapping[str, Any], completions: Sequence[Completion]
    ) -> list[dict[str, Any]] | Reject:
        subject = unit.get("subject")
        if subject not in SUBJECTS:
            return Reject(UNKNOWN_SUBJECT, f"subject {subject!r} is not one of {list(SUBJECTS)}; fix the chunk "
                          "stage's subject labels (manifest)")  # fmt: skip
        if not completions:
            return Reject(SUBJECT_SKIPPED, f"subject {subject!r} is not in extract_qa.subjects")
        raw = completions[0].text
        if self.config.parser == "reference":
            pairs = parse_qa_reference(raw)
            if not pairs:
                reason = "no_qa" if "[NO QA]" in raw else "malformed"
                return Reject(reason, "reference parser found no Question:/Answer: pair", raw)
        else:
            parsed = parse_qa_blocks(raw)
            if not parsed.pairs:
                issues = ", ".join(f"{k}={v}" for k, v in parsed.issues.items())
                return Reject(parsed.reason or "malformed", issues or "no Question/Answer pair found", raw)
            pairs = parsed.pairs
        return [
            {
                "qa_id": stable_id(unit["chunk_id"], unit["standard"], i),
                "chunk_id": unit["chunk_id"],
                "doc_id": unit.get("doc_id"),
                "subject": subject,
                "standard": unit["standard"],
                "qa_index": i,
                "question": question,
                "answer": answer,
                "parser": self.config.parser,
                "raw_output": raw if self.config.keep_raw_output else None,
            }
            for i, (question, answer) in enumerate(pairs)
        ]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return QA_SCHEMA
