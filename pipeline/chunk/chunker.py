"""Cut a document's text into chunks of at most ``max_tokens`` tokens (pure functions).

Chunks are contiguous slices of the document text with no overlap: concatenated they give the
document back exactly, and each slice starts at a token boundary of the full text's tokenisation,
so no token (and no multi-byte character) is ever split. Where to cut inside the allowed window is
chosen by preference: after a blank line (paragraph), after a sentence end, after a line break,
at a space, and only then at any token boundary.

Token counts are checked by tokenising each chunk on its own (the true count a model will see);
BPE can merge differently at a slice edge, so a chunk over the limit is cut again a little
earlier. The reference pipeline's tokenizer for the 4,096-token count is unspecified; ours is a
config field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_SENTENCE_END_RE = re.compile(r"[.!?][\"')\]]*\s*$")

PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class ChunkSpan:
    char_start: int
    char_end: int
    n_tokens: int


def boundary_priority(text: str, cut: int) -> int:
    """How good a place ``cut`` (cut before ``text[cut]``) is: 4 paragraph … 0 mid-word."""
    before = text[max(0, cut - 4) : cut]
    after = text[cut : cut + 1]
    if before.endswith("\n\n"):
        return 4
    if _SENTENCE_END_RE.search(before) and (before[-1:].isspace() or after.isspace()):
        return 3
    if before.endswith("\n"):
        return 2
    if before[-1:].isspace() or after.isspace():
        return 1
    return 0


def _best_cut(text: str, starts: Sequence[int], valid: Sequence[bool], lo: int, end: int, char: int) -> int:
    """The token index in ``[lo, end]`` to cut before: best boundary priority, latest on ties.
    Scans backwards and stops at the first paragraph break, the best there is."""
    best, best_priority = -1, -1
    for i in range(end, lo - 1, -1):
        if not valid[i] or starts[i] <= char:
            continue
        priority = boundary_priority(text, starts[i])
        if priority > best_priority:
            best, best_priority = i, priority
            if priority == 4:
                break
    return best  # -1: no token in the window starts after `char` (degenerate offsets)


def chunk_text(
    text: str,
    offsets: Sequence[tuple[int, int]],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    min_fill: float = 0.5,
) -> list[ChunkSpan]:
    """Chunk ``text`` given its tokens' character ``offsets`` (from one tokenisation of the whole
    text) and ``count_tokens`` (tokenises a piece on its own)."""
    if not text:
        return []
    starts = [s for s, _ in offsets]
    # A cut before token i is valid only where token i-1 ends before token i starts: byte-level
    # BPE gives several tokens the same span when it splits one character across them.
    valid = [i == 0 or offsets[i - 1][1] <= starts[i] for i in range(len(offsets))]
    spans: list[ChunkSpan] = []
    tok, char = 0, 0
    n = len(offsets)
    while char < len(text):
        limit = max_tokens
        while True:
            if n - tok <= limit:
                cut_tok, cut_char = n, len(text)
            else:
                end = tok + limit  # tokens tok..end-1 fit; cutting before `end` is the latest cut
                lo = max(tok + 1, tok + int(limit * min_fill))
                cut_tok = _best_cut(text, starts, valid, lo, end, char)
                if cut_tok < 0:  # take the first token that moves forward, whatever the count
                    cut_tok = next((i for i in range(tok + 1, n) if starts[i] > char), n)
                cut_char = starts[cut_tok] if cut_tok < n else len(text)
            n_tokens = count_tokens(text[char:cut_char])
            if n_tokens <= max_tokens:
                break
            limit -= n_tokens - max_tokens + 8  # re-tokenised slice came out longer: cut earlier
            if limit < 1:
                raise RuntimeError(f"cannot cut a chunk under {max_tokens} tokens at character {char}")
        spans.append(ChunkSpan(char, cut_char, n_tokens))
        tok, char = cut_tok, cut_char
    return spans


@dataclass(frozen=True)
class DocumentText:
    text: str
    pages: tuple[tuple[int, int, int], ...]  # (page_no, char_start, char_end) in `text`

    def page_span(self, start: int, end: int) -> tuple[int, int]:
        """First and last page whose text overlaps ``[start, end)``."""
        touched = [p for p, s, e in self.pages if s < end and e > start] or [
            max((p for p, s, _ in self.pages if s <= start), default=self.pages[0][0])
        ]
        return touched[0], touched[-1]


def join_pages(pages: Sequence[tuple[int, str]]) -> DocumentText:
    """Pages (page_no, text) in order, joined with a blank line, with each page's offsets."""
    parts, spans, pos = [], [], 0
    for i, (page_no, text) in enumerate(pages):
        if i:
            parts.append(PAGE_SEPARATOR)
            pos += len(PAGE_SEPARATOR)
        parts.append(text)
        spans.append((page_no, pos, pos + len(text)))
        pos += len(text)
    return DocumentText("".join(parts), tuple(spans))
