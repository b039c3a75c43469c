"""OCR engines behind one interface: a page in, text blocks out.

``TesseractOcr`` is the CPU default: PyMuPDF renders the page and runs the system's Tesseract 5
(``apt-get install tesseract-ocr tesseract-ocr-eng``) through ``Page.get_textpage_ocr``; about
0.8–1.5 s a page at 200 dpi on one core. The olmOCR-style vision-model path for GPU clusters is
declared here (``engine: vlm``) but not implemented yet: choosing it fails at start-up with that
message instead of silently dropping pages.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Protocol

from pipeline.parse.cleanup import TextBlock
from pipeline.parse.config import OcrConfig


class OcrUnavailable(RuntimeError):
    """The configured OCR engine cannot run on this machine (message says how to fix it)."""


class OcrEngine(Protocol):
    name: str

    def read_blocks(self, page: Any) -> list[TextBlock]:
        """OCR one ``pymupdf.Page``; returns its text blocks (possibly empty)."""
        ...


def find_tessdata(explicit: str | None, language: str) -> str:
    """The tessdata folder holding ``<language>.traineddata``: explicit, $TESSDATA_PREFIX, system."""
    candidates = [explicit] if explicit else []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    candidates += sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)
    candidates += ["/usr/share/tessdata", "/usr/local/share/tessdata", "/opt/homebrew/share/tessdata"]
    first_lang = language.split("+")[0]
    for folder in candidates:
        if folder and (Path(folder) / f"{first_lang}.traineddata").exists():
            return folder
    raise OcrUnavailable(
        f"Tesseract data for language {first_lang!r} not found (looked in: "
        f"{', '.join(c for c in candidates if c)}). Install it with `apt-get install tesseract-ocr "
        f"tesseract-ocr-{first_lang}` (scripts/install.sh does), set TESSDATA_PREFIX or parse.ocr.tessdata, "
        "or set parse.ocr.engine: none to reject pages without a text layer instead."
    )


class TesseractOcr:
    name = "tesseract"

    def __init__(self, config: OcrConfig):
        self.config = config
        self.tessdata = find_tessdata(config.tessdata, config.language)

    def read_blocks(self, page: Any) -> list[TextBlock]:
        textpage = page.get_textpage_ocr(
            tessdata=self.tessdata, language=self.config.language, dpi=self.config.dpi, full=True
        )
        height = page.rect.height or 1.0
        blocks = page.get_text("blocks", textpage=textpage)
        return [TextBlock(text=b[4], top=b[1] / height, bottom=b[3] / height) for b in blocks if b[6] == 0]


def build_ocr_engine(config: OcrConfig) -> OcrEngine | None:
    """The engine for ``config``; ``None`` for ``engine: none``. Raises if it cannot run here."""
    if config.engine == "none":
        return None
    if config.engine == "tesseract":
        return TesseractOcr(config)
    raise NotImplementedError(
        "parse.ocr.engine: vlm (an olmOCR-style vision model served by vLLM) is not implemented yet; "
        "use parse.ocr.engine: tesseract"
    )
