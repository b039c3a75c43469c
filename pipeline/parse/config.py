"""Configuration of the parse stage (PDF → cleaned page text, with OCR for scanned pages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import check
from pipeline.resources import StageResources

Subject = Literal["math", "physics", "chemistry", "biology", "medicine", "cs", "economics"]


@dataclass(frozen=True)
class OcrConfig:
    """OCR for pages without a usable text layer.

    Args:
        engine: ``tesseract`` (CPU default, through PyMuPDF's OCR support and the system's
            Tesseract 5), ``none`` (pages needing OCR are rejected as ``no_text_layer``), or
            ``vlm`` (an olmOCR-style vision model behind the LLM engine layer, for GPU clusters).
        language: Tesseract language(s), e.g. ``eng`` or ``eng+deu``.
        dpi: render resolution for OCR; 200 reads textbook print well, 300 helps small fonts.
        tessdata: the tessdata folder; ``null`` = ``$TESSDATA_PREFIX`` or the system's.
        min_chars: OCR output with fewer non-space characters is ``ocr_failed``.
    """

    engine: Literal["tesseract", "vlm", "none"] = "tesseract"
    language: str = "eng"
    dpi: int = 200
    tessdata: str | None = None
    min_chars: int = 20

    def __post_init__(self) -> None:
        check(72 <= self.dpi <= 600, "ocr.dpi", f"must be within 72..600, got {self.dpi}")
        check(self.min_chars >= 0, "ocr.min_chars", "must be >= 0")


@dataclass(frozen=True)
class ParseConfig:
    """Args:
    input: folder or ``pyarrow.fs`` URI (``s3://bucket/books/``) searched recursively for PDFs;
        ``builtin:sample-textbooks`` for the generated sample shelf.
    manifest: CSV or YAML mapping path globs (relative to ``input``) to subject, licence, title.
        ``null``: ``manifest.csv`` / ``manifest.yaml`` inside ``input`` when present.
    include: file-name globs to pick up; a file that matches but is not a PDF is rejected
        (``not_pdf``), never skipped.
    default_subject: subject of files the manifest does not cover.
    infer_subject_from_filename: otherwise guess it from name words (``chem_…`` → chemistry,
        ``stats_…`` → math); a file with no subject at all is rejected (``no_subject``).
    pages_per_shard: pages per unit of work and output file. Big books split into several shards
        so two workers share one 1,000-page book; small enough that a killed job loses little.
    min_text_chars: a page whose text layer has fewer non-space characters has no usable text
        (scanned, or blank).
    max_file_mb / max_pages: larger files are rejected (``too_large``) before being read whole.
    strip_headers_footers, margin_fraction, header_min_repeats: running header/footer removal
        (see ``pipeline.parse.cleanup``).
    """

    input: str = "builtin:sample-textbooks"
    manifest: str | None = None
    include: tuple[str, ...] = ("*.pdf", "*.PDF")
    default_subject: Subject | None = None
    infer_subject_from_filename: bool = True
    pages_per_shard: int = 64
    min_text_chars: int = 20
    max_file_mb: float = 1024.0
    max_pages: int = 20000
    strip_headers_footers: bool = True
    margin_fraction: float = 0.08
    header_min_repeats: int = 3
    ocr: OcrConfig = field(default_factory=OcrConfig)
    resources: StageResources = field(default_factory=StageResources)

    def __post_init__(self) -> None:
        check(bool(self.input), "parse.input", "is required: a folder or URI of PDFs")
        check(self.pages_per_shard >= 1, "parse.pages_per_shard", "must be >= 1")
        check(self.max_file_mb > 0, "parse.max_file_mb", "must be > 0")
        check(self.max_pages >= 1, "parse.max_pages", "must be >= 1")
        check(0.0 < self.margin_fraction < 0.5, "parse.margin_fraction", "must be within (0, 0.5)")
        check(self.header_min_repeats >= 2, "parse.header_min_repeats", "must be >= 2")
        check(bool(self.include), "parse.include", "needs at least one glob")
