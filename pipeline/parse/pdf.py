"""PDF → page records with PyMuPDF, in two steps that are each a unit of parallel work.

1. :func:`inspect_pdf` (one task per file): identify the file (content hash = ``doc_id``), refuse
   what cannot be read — ``empty_file``, ``not_pdf``, ``too_large``, ``encrypted``, ``corrupt``, ``truncated``,
   ``zero_pages``, ``no_subject`` — with the error text, and count its pages.
2. :func:`extract_page_range` (one task per ``pages_per_shard`` pages): text blocks per page,
   OCR for pages without a usable text layer, running header/footer removal, clean-up. Pages that
   end with no text go to rejects: ``empty_page`` (blank), ``no_text_layer`` (needs OCR, OCR off),
   ``ocr_failed``, ``page_error``.

Splitting big books into page ranges is what lets two workers share a 1,176-page book: with one
task per file the largest book alone would cap a 2-worker speed-up at 1.6× on the sample shelf.
Nothing here knows about Ray.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.parse.cleanup import TextBlock, find_running_lines, page_text
from pipeline.parse.config import ParseConfig
from pipeline.parse.manifest import Manifest, infer_subject
from pipeline.parse.ocr import OcrEngine

STAGE = "parse"

# File-level reject reasons.
EMPTY_FILE = "empty_file"
NOT_PDF = "not_pdf"
TOO_LARGE = "too_large"
ENCRYPTED = "encrypted"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
ZERO_PAGES = "zero_pages"
NO_SUBJECT = "no_subject"
DUPLICATE_FILE = "duplicate_file"
READ_ERROR = "read_error"
# Page-level reject reasons.
EMPTY_PAGE = "empty_page"
NO_TEXT_LAYER = "no_text_layer"
OCR_FAILED = "ocr_failed"
PAGE_ERROR = "page_error"

# Text extraction flags: keep whitespace, clip to the page, let MuPDF expand ligatures.
_TEXT_FLAGS_NAMES = ("TEXT_PRESERVE_WHITESPACE", "TEXT_MEDIABOX_CLIP")
# A text layer that is mostly U+FFFD (fonts without a Unicode map) is as good as none.
_MAX_REPLACEMENT_FRACTION = 0.3


@dataclass(frozen=True)
class InputFile:
    path: str  # what the filesystem opens (absolute path or bucket/key)
    relative: str  # path relative to the input folder: manifest globs match this
    size: int


@dataclass(frozen=True)
class DocumentInfo:
    """The inventory record of one input file: readable (``reason`` None) or rejected."""

    path: str
    relative: str
    size: int
    doc_id: str | None = None
    n_pages: int = 0
    subject: str | None = None
    title: str | None = None
    licence: str | None = None
    reason: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _text_flags() -> int:
    import pymupdf

    flags = 0
    for name in _TEXT_FLAGS_NAMES:
        flags |= getattr(pymupdf, name)
    return flags


def open_document(data: bytes):
    """A ``pymupdf.Document`` over the bytes of a PDF."""
    import pymupdf

    return pymupdf.open(stream=data, filetype="pdf")


_open = open_document


def doc_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def resolve_subject(file: InputFile, manifest: Manifest, config: ParseConfig) -> tuple[str | None, dict]:
    entry = manifest.lookup(file.relative)
    meta = {"title": entry.title if entry else None, "licence": entry.licence if entry else None}
    subject = entry.subject if entry and entry.subject else None
    subject = subject or config.default_subject
    if subject is None and config.infer_subject_from_filename:
        subject = infer_subject(file.relative)
    return subject, meta


def inspect_pdf(file: InputFile, data: bytes | None, manifest: Manifest, config: ParseConfig) -> DocumentInfo:
    """Inventory one file. ``data`` is None when the file was too large to read."""
    base = {"path": file.path, "relative": file.relative, "size": file.size}
    max_bytes = config.max_file_mb * 1024 * 1024
    if data is None or file.size > max_bytes:
        return DocumentInfo(
            **base,
            reason=TOO_LARGE,
            detail=f"{file.size / 2**20:.1f} MiB exceeds parse.max_file_mb={config.max_file_mb:g}; "
            "split the file or raise the limit",
        )
    if not data:
        return DocumentInfo(**base, reason=EMPTY_FILE, detail="the file is empty (0 bytes)")
    if b"%PDF-" not in data[:1024]:
        return DocumentInfo(**base, reason=NOT_PDF, detail=f"no %PDF- header; file starts with {data[:16]!r}")
    doc_id = doc_id_of(data)
    base["doc_id"] = doc_id
    has_eof = b"%%EOF" in data[-4096:]
    try:
        doc = _open(data)
    except Exception as exc:
        reason = TRUNCATED if not has_eof else CORRUPT
        return DocumentInfo(**base, reason=reason, detail=f"{type(exc).__name__}: {exc}")
    with doc:
        if doc.needs_pass:
            return DocumentInfo(
                **base,
                reason=ENCRYPTED,
                detail="password-protected; decrypt it (e.g. qpdf --decrypt --password=… in out.pdf) "
                "and add the decrypted copy",
            )
        if not has_eof and doc.is_repaired:
            return DocumentInfo(
                **base,
                reason=TRUNCATED,
                detail="no %%EOF trailer and the cross-reference table needed repair: the file was "
                "cut short (incomplete download?); fetch it again",
            )
        n_pages = doc.page_count
    if n_pages == 0:
        return DocumentInfo(**base, reason=ZERO_PAGES, detail="the PDF has no pages")
    if n_pages > config.max_pages:
        return DocumentInfo(
            **base, n_pages=n_pages, reason=TOO_LARGE,
            detail=f"{n_pages} pages exceed parse.max_pages={config.max_pages}",
        )  # fmt: skip
    subject, meta = resolve_subject(file, manifest, config)
    if subject is None:
        return DocumentInfo(
            **base, n_pages=n_pages, reason=NO_SUBJECT,
            detail=f"no subject for {file.relative}: add it to the manifest (path glob -> subject) "
            "or set parse.default_subject",
        )  # fmt: skip
    return DocumentInfo(**base, n_pages=n_pages, subject=subject, **meta)


def _blocks(page: Any, flags: int) -> list[TextBlock]:
    height = page.rect.height or 1.0
    return [
        TextBlock(text=b[4], top=b[1] / height, bottom=b[3] / height)
        for b in page.get_text("blocks", flags=flags)
        if b[6] == 0
    ]


def _n_visible(blocks: list[TextBlock]) -> int:
    text = "".join(b.text for b in blocks)
    return len(text) - sum(text.count(c) for c in " \n\t\r\xa0")


def _unusable_text_layer(blocks: list[TextBlock], min_chars: int) -> bool:
    visible = _n_visible(blocks)
    if visible < min_chars:
        return True
    replaced = sum(b.text.count("\ufffd") for b in blocks)
    return replaced / visible > _MAX_REPLACEMENT_FRACTION


def _has_visual_content(page: Any) -> bool:
    return bool(page.get_images(full=False)) or len(page.get_drawings()) > 0


@dataclass
class PageRangeResult:
    rows: list[dict[str, Any]]
    rejects: list[dict[str, Any]]
    counters: dict[str, float]


def extract_page_range(
    data: bytes,
    info: DocumentInfo,
    first_page: int,
    last_page: int,
    config: ParseConfig,
    ocr: OcrEngine | None,
    doc: Any = None,
) -> PageRangeResult:
    """Pages ``first_page..last_page`` (1-based, inclusive) of a readable document.

    ``doc``: the document already opened from ``data`` (a worker doing several ranges of one book
    opens it once)."""
    flags = _text_flags()
    per_page: list[tuple[int, list[TextBlock] | None, str]] = []  # (page_no, blocks, status)
    rejects: list[dict[str, Any]] = []
    ocr_seconds = 0.0

    def reject(page_no: int, reason: str, detail: str) -> None:
        rejects.append(
            {
                "input_id": f"{info.doc_id}:{page_no}",
                "stage": STAGE,
                "reason": reason,
                "detail": detail,
                "source": info.path,
            }
        )

    opened = doc is None
    doc = _open(data) if opened else doc
    try:
        for page_no in range(first_page, last_page + 1):
            try:
                page = doc[page_no - 1]
                blocks = _blocks(page, flags)
                if not _unusable_text_layer(blocks, config.min_text_chars):
                    per_page.append((page_no, blocks, "ok"))
                    continue
                if not _has_visual_content(page):
                    if _n_visible(blocks) == 0:
                        reject(page_no, EMPTY_PAGE, "blank page: no text and no images")
                    else:
                        per_page.append((page_no, blocks, "ok"))  # a short page, e.g. a part title
                    continue
                if ocr is None:
                    reject(
                        page_no,
                        NO_TEXT_LAYER,
                        "page has images but no text layer and OCR is off (parse.ocr.engine: none)",
                    )
                    continue
                started = time.perf_counter()
                ocr_blocks = ocr.read_blocks(page)
                ocr_seconds += time.perf_counter() - started
                n = _n_visible(ocr_blocks)
                if n < config.ocr.min_chars:
                    reject(
                        page_no,
                        OCR_FAILED,
                        f"{ocr.name} read {n} characters (< parse.ocr.min_chars={config.ocr.min_chars})",
                    )
                    continue
                per_page.append((page_no, ocr_blocks, "ocr"))
            except Exception as exc:  # one bad page must not sink the book
                reject(page_no, PAGE_ERROR, f"{type(exc).__name__}: {exc}")
    finally:
        if opened:
            doc.close()

    running = (
        find_running_lines([b for _, b, _ in per_page], config.margin_fraction, config.header_min_repeats)
        if config.strip_headers_footers
        else set()
    )
    rows = []
    for page_no, blocks, status in per_page:
        text = page_text(blocks, config.margin_fraction, running, config.strip_headers_footers)
        if not text:
            reject(page_no, EMPTY_PAGE, "no text left after removing page numbers and running headers")
            continue
        rows.append(
            {
                "doc_id": info.doc_id,
                "page_no": page_no,
                "text": text,
                "n_chars": len(text),
                "status": status,
                "source": info.path,
                "subject": info.subject,
                "title": info.title,
                "licence": info.licence,
                "n_pages": info.n_pages,
            }
        )
    counters = {
        "chars": float(sum(r["n_chars"] for r in rows)),
        "ocr_pages": float(sum(1 for r in rows if r["status"] == "ocr")),
        "ocr_seconds": round(ocr_seconds, 3),
    }
    return PageRangeResult(rows=rows, rejects=rejects, counters=counters)


def page_ranges(n_pages: int, pages_per_shard: int) -> list[tuple[int, int]]:
    """``[(1, 64), (65, 128), …]`` covering ``1..n_pages``."""
    return [(s, min(s + pages_per_shard - 1, n_pages)) for s in range(1, n_pages + 1, pages_per_shard)]


def page_shard_name(doc_id: str, first_page: int) -> str:
    """Output file stem of a page range; the chunk stage finds a document's pages by this prefix."""
    return f"{doc_id}-p{first_page:05d}"
