"""Configs of the curation stages (one YAML section each; see ``ray_jobs/configs/curation_*.yaml``).

Every LLM stage inherits ``input_stage``, ``engine``, ``sampling``, ``system_prompt``, ``cache``,
``cache_flush_rows`` and ``parse_workers`` from :class:`pipeline.llm.LLMStageConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import check
from pipeline.llm.config import LLMStageConfig

Mode = Literal["robust", "reference"]


@dataclass(frozen=True)
class RefineConfig(LLMStageConfig):
    """S3 refinement: rewrite each QA pair with its source chunk (joined by ``chunk_id``).

    Args:
        input_stage: the join step's output (``refine_input``, written by the same job); leave it.
        qa_stage: stage whose QA rows are refined (``dedup``).
        chunk_stage: stage holding the source chunks (``chunk``; CHUNK_SCHEMA rows).
        prompt_version: ``pipeline/curate/prompts/refine_qa.<version>.prompt``.
        parser: ``robust`` or ``reference`` (SPEC §6 post-processor, quirks included).
    """

    input_stage: str = "refine_input"
    qa_stage: str = "dedup"
    chunk_stage: str = "chunk"
    prompt_version: str = "v1"
    parser: Mode = "robust"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.input_stage not in (self.qa_stage, self.chunk_stage), "refine.input_stage",
              "is the join output that refine writes itself; leave it at refine_input")  # fmt: skip


@dataclass(frozen=True)
class CotJudgeConfig(LLMStageConfig):
    """S4a: does the refined answer already reason (YES) or only state a result (NO)?

    Args:
        verdict: ``robust`` or ``reference`` verdict parsing (``pipeline.curate.verdict``).
            Unparseable verdicts are rejected (``unparseable_verdict``), as in the reference.
    """

    input_stage: str = "refine"
    prompt_version: str = "v1"
    verdict: Mode = "robust"


@dataclass(frozen=True)
class CotDistillConfig(LLMStageConfig):
    """S4b: a step-by-step answer for rows the judge found without reasoning (others pass).

    The reference sends this prompt with no system message (``system_prompt: false``).
    """

    input_stage: str = "cot_judge"
    system_prompt: bool = False
    prompt_version: str = "v1"


@dataclass(frozen=True)
class FilterConfig(LLMStageConfig):
    """S5: keep a pair only when the judge says YES (NO and unparseable are rejected)."""

    input_stage: str = "cot_distill"
    prompt_version: str = "v1"
    verdict: Mode = "robust"


@dataclass(frozen=True)
class ReferenceAnswerConfig(LLMStageConfig):
    """S7: the concise reference answer of every row (never drops a row for its output)."""

    input_stage: str = "decontaminate"
    prompt_version: str = "v1"
    parser: Mode = "robust"
    on_truncated: Literal["fallback", "reject"] = "fallback"


@dataclass(frozen=True)
class FinalizeConfig:
    """S8: the release table ``{question, answer, subject, reference_answer}`` + lineage ids.

    Args:
        input_stage: the last curation stage (``reference_answer``).
        dataset_name: name in the dataset card.
        lineage: also keep ``qa_id``, ``chunk_id``, ``doc_id`` (and ``cluster_id``) columns.
        card_stages: stages whose counts, models and prompts the card lists, in pipeline order.
        export_dir: also copy the Parquet files and card here (``null``: only the run directory).
    """

    input_stage: str = "reference_answer"
    dataset_name: str = "TextbookReasoning"
    lineage: bool = True
    card_stages: tuple[str, ...] = (
        "parse", "chunk", "extract_qa", "dedup", "refine_input", "refine", "cot_judge", "cot_distill",
        "filter_qa", "decontam_retrieve", "decontaminate", "reference_answer",
    )  # fmt: skip
    export_dir: str | None = None
