"""Config of the QA-extraction stage (``extract_qa:`` section of a run YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config import check
from pipeline.llm.config import LLMStageConfig
from pipeline.schema import SUBJECTS

STANDARDS = ("high", "low")


@dataclass(frozen=True)
class ExtractQAConfig(LLMStageConfig):
    """QA extraction: each chunk is run through its subject's prompt once per standard.

    Inherits ``input_stage`` (default ``chunk``), ``engine``, ``sampling``, ``system_prompt``,
    ``cache``, ``cache_flush_rows`` and ``parse_workers`` from :class:`LLMStageConfig`.

    Args:
        standards: which prompt standards run on every chunk: ``high`` keeps reasoning-heavy
            pairs only, ``low`` also turns statements, theorems and definitions into questions.
            The reference runs both and unions the outputs (dedup removes overlaps).
        subjects: subjects to extract (chunks of others are rejected as ``subject_skipped``);
            empty = all seven.
        prompt_version: version of the prompt files
            (``pipeline/extract/prompts/qa_extraction_<subject>_<standard>.<version>.prompt``).
        parser: ``robust`` (reads the formats real models emit, reports failures) or
            ``reference`` (the reference post-processor's exact regex and quirks; it also parses
            truncated outputs, as the reference does).
        keep_raw_output: store the model's raw text in each QA row (``raw_output``) for audits.
    """

    standards: tuple[Literal["high", "low"], ...] = STANDARDS
    subjects: tuple[str, ...] = ()
    prompt_version: str = "v1"
    parser: Literal["robust", "reference"] = "robust"
    keep_raw_output: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.standards), "extract_qa.standards", f"choose at least one of {list(STANDARDS)}")
        check(
            len(set(self.standards)) == len(self.standards), "extract_qa.standards", "lists a standard twice"
        )
        unknown = sorted(set(self.subjects) - set(SUBJECTS))
        check(not unknown, "extract_qa.subjects", f"unknown subject(s) {unknown}; allowed: {list(SUBJECTS)}")
