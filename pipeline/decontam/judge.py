"""S6-4: the LLM same-question judge over each row's top-k benchmark neighbours.

One request per (row, candidate) pair — a fan-out of ``top_k`` requests per row. Per candidate the
verdict is parsed (``pipeline.curate.verdict``); a cut-off or unreadable one is ``None`` and skipped.
A row is **kept iff at least one verdict is readable and none is YES** (SPEC §9 S6p):

- any YES → rejected ``contaminated``; ``detail`` is JSON ``{"question", "hits": [{benchmark,
  item_id, similarity_score, question}]}`` so the contamination report can be rebuilt from rejects;
- no readable verdict → rejected ``unparseable_verdict``.

Kept rows carry ``retrieved_benchmark`` with each candidate's ``judge_output`` and ``verdict``
(the reference stores the raw output under the hard-coded key ``"Llama3.3-70B-judge"``; here it is
``judge_output``, and the model is in ``decontam_gen``), and ``decontamination_res`` = False.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pipeline.curate.tasks import UNPARSEABLE_VERDICT, extend_schema
from pipeline.curate.verdict import parse_verdict
from pipeline.decontam.config import DecontaminateConfig
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

CONTAMINATED = "contaminated"

JUDGED_CANDIDATE_TYPE = pa.struct(
    [
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("question", pa.string()),
        ("similarity_score", pa.float32()),
        ("judge_output", pa.string()),  # null: below min_similarity, not judged
        ("verdict", pa.bool_()),  # True = same question; null = unparseable or not judged
    ]
)


class DecontamJudgeTask(LLMTask):
    name = "decontam_judge"
    id_column = "qa_id"
    input_columns = ("qa_id", "refined_question", "retrieved_benchmark")
    on_truncated = "parse"  # one cut-off verdict out of five is skipped, not fatal

    def __init__(self, config: DecontaminateConfig):
        self.config = config
        self.version = config.prompt_version
        self.prompt = load_prompt("pipeline.decontam.prompts", "decontam_judge", config.prompt_version)
        self.system = SYSTEM_PROMPT if config.system_prompt else None
        self.question_column = config.question_column
        self.input_columns = ("qa_id", config.question_column, "retrieved_benchmark")

    def judged(self, unit: Mapping[str, Any]) -> list[int]:
        """Positions of the candidates sent to the judge (all, or those >= ``min_similarity``)."""
        threshold = self.config.min_similarity
        candidates = unit["retrieved_benchmark"] or []
        return [
            i for i, c in enumerate(candidates) if threshold is None or c["similarity_score"] >= threshold
        ]

    def build_requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        return [
            LLMRequest(tuple(self.prompt.messages(self.system, ORIGINAL_PROBLEM=unit[self.question_column] or "",
                                                  CANDIDATE_PROBLEM=unit["retrieved_benchmark"][i]["question"] or "")),
                       self.prompt.prompt_id)
            for i in self.judged(unit)
        ]  # fmt: skip

    def parse(self, unit: Mapping[str, Any], completions: Sequence[Completion]) -> list[dict] | Reject:
        outputs = dict(zip(self.judged(unit), completions))
        candidates, hits, readable = [], [], 0
        for i, c in enumerate(unit["retrieved_benchmark"] or []):
            comp = outputs.get(i)
            verdict = None
            if comp is not None and not comp.truncated:
                verdict = parse_verdict(comp.text, self.config.verdict)
            if comp is None:
                verdict = False  # below min_similarity: counted as a NO without asking
            readable += verdict is not None
            candidates.append({**c, "judge_output": comp.text if comp else None, "verdict": verdict})
            if verdict:
                hits.append({k: c[k] for k in ("benchmark", "item_id", "similarity_score", "question")})
        if hits:
            detail = json.dumps({"question": unit[self.question_column], "hits": hits}, ensure_ascii=False)
            return Reject(CONTAMINATED, detail, "\n---\n".join(c.text for c in completions))
        if readable == 0:
            return Reject(UNPARSEABLE_VERDICT, f"none of the {len(completions)} judgements has a YES/NO decision",
                          "\n---\n".join(c.text for c in completions))  # fmt: skip
        gen = provenance(completions) if completions else None
        return [
            {**unit, "retrieved_benchmark": candidates, "decontamination_res": False, "decontam_gen": gen}
        ]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return extend_schema(input_schema, [pa.field("retrieved_benchmark", pa.list_(JUDGED_CANDIDATE_TYPE)),
                                            pa.field("decontamination_res", pa.bool_()),
                                            pa.field("decontam_gen", GEN_TYPE)])  # fmt: skip
