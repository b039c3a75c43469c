"""Textbook clean-up on extracted page text: pure functions, no PDF library.

What a textbook page needs before chunking:

- **Running headers/footers and page numbers** ("42", "CHAPTER 2. CONTINUOUS PROBABILITY
  DENSITIES", "2.1. SIMULATION OF …") sit at the top/bottom edge of most pages and would land
  in every chunk as noise. A line of an edge block (the topmost and bottommost block, or any block
  in the margin band) is dropped when it is a bare page number, a "Chapter N. Title" header, or
  when its *shape* (lower-cased, digits → ``#``) repeats at the same edge of at least
  ``min_repeats`` pages of the same document range. Chapter-opening pages ("Chapter 2 /
  Continuous Probability") appear once and are kept.
- **Hyphenation at line ends** ("proba-\\nbility" → "probability") is joined when both sides are
  lower-case letters; "Navier-\\nStokes" keeps its hyphen. Soft hyphens (U+00AD) are removed.
- **Ligatures** (ﬁ ﬂ ﬀ ﬃ ﬄ) become letters so words are searchable and tokenise normally.
  No Unicode compatibility folding: NFKC would turn "x²" into "x2" and "ℏ" into "h", and math
  symbols must survive (∫, ∑, ⃗E, ≤ …).
- Whitespace: trailing spaces removed, runs of blank lines collapsed to one blank line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
# One str.translate pass (C speed) instead of regex callbacks: this runs on every page.
_CLEAN_TABLE = str.maketrans({**LIGATURES, "\u00ad": None})
_NEEDS_TRANSLATE = re.compile("[" + "".join(LIGATURES) + "\u00ad]")
_PAGE_NUMBER_RE = re.compile(
    r"^\s*(?:page\s+)?(?:\d{1,4}|(?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3}))"
    r"(?:\s*(?:/|of)\s*\d{1,4})?\s*$",
    re.IGNORECASE,
)
MAX_EDGE_LINES = 3
_RUNNING_TITLE_RE = re.compile(
    r"^\s*(?:chapter|section|part|unit)\s+[\dIVXivx]+\s*[.:|—–-]\s*\S", re.IGNORECASE
)
_HYPHEN_BREAK_RE = re.compile(r"(?<=[a-zß-ÿ])-\n(?=[a-zß-ÿ])")
_BLANK_RUNS_RE = re.compile(r"\n{3,}")
_TRAILING_SPACE_RE = re.compile(r"[ \t]+\n")


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A block of text on a page with its vertical position as a fraction of page height."""

    text: str
    top: float  # y0 / page height, 0 = top edge
    bottom: float  # y1 / page height


def margin_key(line: str) -> str:
    """The shape of a header/footer line: case-, digit- and spacing-insensitive."""
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", line.strip().lower()))


def is_page_number(line: str) -> bool:
    return bool(_PAGE_NUMBER_RE.match(line))


def edge_positions(blocks: Sequence[TextBlock], margin: float) -> dict[int, str]:
    """Blocks that may hold a running header or footer: ``{block index: "top" | "bottom"}``.

    The topmost and the bottommost block of the page, plus any block inside the ``margin`` band.
    Position comes from the coordinates, not the text order: some PDFs emit the header last, and
    LaTeX books put it at 12% of the height, well below any fixed band. A header is short: blocks
    of more than ``MAX_EDGE_LINES`` lines are body text, and so is the only block of a page.
    """
    if len(blocks) < 2:
        return {}
    edges: dict[int, str] = {}
    top = min(range(len(blocks)), key=lambda i: blocks[i].top)
    bottom = max(range(len(blocks)), key=lambda i: blocks[i].bottom)
    for i, block in enumerate(blocks):
        if block.bottom <= margin:
            edges[i] = "top"
        elif block.top >= 1.0 - margin:
            edges[i] = "bottom"
    edges.setdefault(top, "top")
    edges.setdefault(bottom, "bottom")
    return {i: where for i, where in edges.items() if _n_lines(blocks[i].text) <= MAX_EDGE_LINES}


def _n_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def is_running_title(line: str) -> bool:
    """``CHAPTER 2. CONTINUOUS …`` / ``Chapter 2 | Choice in …``: a chapter header line."""
    return bool(_RUNNING_TITLE_RE.match(line))


def find_running_lines(pages: Sequence[Sequence[TextBlock]], margin: float, min_repeats: int) -> set[str]:
    """``position|shape`` keys of edge lines repeating on at least ``min_repeats`` pages."""
    counts: Counter[str] = Counter()
    for blocks in pages:
        keys = {
            f"{where}|{margin_key(line)}"
            for i, where in edge_positions(blocks, margin).items()
            for line in blocks[i].text.splitlines()
            if line.strip()
        }
        counts.update(keys)
    return {key for key, n in counts.items() if n >= min_repeats}


def page_text(blocks: Sequence[TextBlock], margin: float, running: set[str], strip_margins: bool) -> str:
    """Join a page's blocks, dropping page numbers and running header/footer lines at its edges."""
    edges = edge_positions(blocks, margin) if strip_margins else {}
    parts = []
    for i, block in enumerate(blocks):
        lines = block.text.splitlines()
        if i in edges:
            lines = [
                ln
                for ln in lines
                if not (
                    is_page_number(ln) or is_running_title(ln) or f"{edges[i]}|{margin_key(ln)}" in running
                )
            ]
        text = "\n".join(lines).strip("\n")
        if text.strip():
            parts.append(text)
    return clean_text("\n\n".join(parts))


def clean_text(text: str) -> str:
    """Ligatures, soft hyphens, line-end hyphenation and whitespace; math symbols untouched."""
    if _NEEDS_TRANSLATE.search(text):  # rare characters: skip the per-character pass otherwise
        text = text.replace("\u00ad\n", "").translate(_CLEAN_TABLE)
    text = _HYPHEN_BREAK_RE.sub("", text)
    text = _TRAILING_SPACE_RE.sub("\n", text)
    text = _BLANK_RUNS_RE.sub("\n\n", text)
    return text.strip()
