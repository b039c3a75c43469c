"""Configs of the mixture job (``mixture:``, ``mixture_decontaminate:``, ``mixture_student:``,
``mixture_grade:`` sections)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import check
from pipeline.decontam.config import DecontaminateConfig, DecontamRetrieveConfig
from pipeline.dedup.config import DedupConfig
from pipeline.llm.config import LLMStageConfig

Selection = Literal["all", "random", "length", "difficulty"]


@dataclass(frozen=True)
class MixtureSource:
    """One dataset of the mixture.

    Args:
        name: short name, also the ``source`` column value and the shard name.
        path: ``stage:<name>`` (a stage of this run, e.g. ``stage:finalize`` for TextbookReasoning),
            a local ``.parquet``/``.jsonl``/``.json`` file or folder of them, or ``hf:<dataset id>``
            (read with ``datasets.load_dataset``; needs the hub).
        split: split of an ``hf:`` dataset.
        question_field / answer_field / reference_field / subject_field: column names in the source;
            an answer that is a list takes its first element (the Data-Mixture files do).
        subject: subject for every row when the source has no subject column.
        selection: ``all`` | ``random`` | ``length`` | ``difficulty``.
        k: rows to keep for ``random`` and ``length`` (``null``: all); a cap for ``difficulty``.
        difficulty_low / difficulty_high: keep rows whose mean grade is strictly between them
            (1 and 9 for NaturalReasoning, 2 and 9 for Nemotron-Science in the paper's runs).
        limit: read at most this many rows (smoke runs).

    Every source goes through the same MinHash dedup (jointly: a question found in two sources is
    kept once, under its lowest id) and the same decontamination as TextbookReasoning.
    """

    name: str
    path: str
    split: str = "train"
    question_field: str = "question"
    answer_field: str = "answer"
    reference_field: str | None = "reference_answer"
    subject_field: str | None = "subject"
    subject: str = "unknown"
    selection: Selection = "all"
    k: int | None = None
    difficulty_low: float = 1.0
    difficulty_high: float = 9.0
    limit: int | None = None

    def __post_init__(self) -> None:
        check(
            bool(self.name) and "/" not in self.name, "mixture.sources.name", "must be a non-empty file name"
        )
        check(self.k is None or self.k > 0, "mixture.sources.k", "must be positive")
        check(
            self.difficulty_low < self.difficulty_high,
            "mixture.sources.difficulty_low",
            "must be < difficulty_high",
        )


@dataclass(frozen=True)
class MixtureConfig:
    """The MegaScience mixture: sources, their selection, and the shared dedup/decontam settings.

    Args:
        sources: the datasets to combine.
        seed: seed of random selection (the reference's shuffle had none).
        length_tokenizer: tokenizer of the response-length rule (reference: Qwen2.5-7B's; the
            built-in Qwen3 tokenizer has the same BPE vocabulary).
        length_max_tokens: responses longer than this are dropped before the top-k (reference 10,000).
        difficulty_samples: student answers graded per question.
        dedup: MinHash settings applied to every source (reference parameters by default).
        retrieve: embedding/search settings of decontamination (its ``input_stage`` and
            ``query_column`` are set by the job).
    """

    sources: tuple[MixtureSource, ...] = ()
    seed: int = 0
    length_tokenizer: str = "builtin:qwen3-tokenizer"
    length_max_tokens: int = 10_000
    difficulty_samples: int = 4
    dedup: DedupConfig = field(default_factory=lambda: DedupConfig(input_stage="mixture_sources"))
    retrieve: DecontamRetrieveConfig = field(
        default_factory=lambda: DecontamRetrieveConfig(input_stage="mixture_dedup", query_column="question")
    )

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        check(len(set(names)) == len(names), "mixture.sources", f"source names must be unique, got {names}")
        check(self.length_max_tokens > 0, "mixture.length_max_tokens", "must be positive")
        check(self.difficulty_samples >= 1, "mixture.difficulty_samples", "must be >= 1")


@dataclass(frozen=True)
class MixtureDecontaminateConfig(DecontaminateConfig):
    """The decontamination judge on the mixture sources' questions."""

    input_stage: str = "mixture_retrieve"
    question_column: str = "question"
    report_examples: int = 3


@dataclass(frozen=True)
class StudentAnswerConfig(LLMStageConfig):
    """Difficulty step 2: ``mixture.difficulty_samples`` sampled step-by-step answers per question."""

    input_stage: str = "mixture_decontaminate"
    system_prompt: bool = False
    prompt_version: str = "v1"


@dataclass(frozen=True)
class GradeConfig(LLMStageConfig):
    """Difficulty step 3: each student answer graded 0–10 against the reference answer."""

    input_stage: str = "mixture_student"
    prompt_version: str = "v1"
