"""Parse a QA-extraction output (``Question:`` … ``Answer:`` blocks, or ``[NO QA]``) into pairs.

Two parsers:

- :func:`parse_qa_blocks` (``parser: robust``, the default) reads what real models emit: the
  asked-for ``Question:``/``Answer:`` lines, and also ``**Question:**``, ``Question 1:``,
  ``Q:``/``A:``, ``### Question 2`` headings, list bullets, any letter case, a leading
  ``<think>`` block and preamble/closing chatter. Labels count only at the start of a line,
  outside fenced code blocks and ``>`` quotes, so an answer that quotes "Question:" inside code or
  a quotation stays intact. A question without an answer is dropped and reported; an output with
  nothing usable gets a reason (:data:`NO_QA`, :data:`NO_ANSWER`, :data:`MALFORMED`,
  :data:`EMPTY_OUTPUT`).
- :func:`parse_qa_reference` (``parser: reference``) reproduces the reference post-processor
  exactly (one case-sensitive DOTALL regex; ``*`` stripped from both ends), quirks included:
  ``Question 1:``/``Q:``/lower case are missed, a question without an answer is merged into its
  neighbour, empty captures are kept. Use it to compare yields with the original pipeline.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

# Reasons a whole output yields no pair (reject reasons of the extraction stage).
NO_QA = "no_qa"  # the model said [NO QA]: a legitimate "nothing here", counted, not an error
NO_ANSWER = "no_answer"  # questions, but none with an answer (high-standard prompts allow this)
MALFORMED = "malformed"  # text without any Question/Answer label
EMPTY_OUTPUT = "empty_output"

# Issues inside an output that still yielded pairs (counted in stats).
QUESTION_WITHOUT_ANSWER = "question_without_answer"
EMPTY_QUESTION = "empty_question"
EMPTY_ANSWER = "empty_answer"
ANSWER_WITHOUT_QUESTION = "answer_without_question"

_NO_QA = re.compile(r"\[\s*NO[\s_-]*QA\s*\]", re.IGNORECASE)
_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^\s*(```|~~~)")

# A label at the start of a line: optional heading hashes / list bullet / emphasis, the label
# word, an optional number, optional closing emphasis, then the punctuation (if any).
_LABEL = re.compile(
    r"""^[ \t]*
    (?P<heading>\#{1,6}[ \t]*)?
    (?:(?:[-+•]|\d+[.)])[ \t]+)?                      # list bullet or "1." before the label
    (?P<open>[*_]{1,3})?[ \t]*
    (?P<word>question|q|answer|a|solution)
    (?P<num>[ \t]*(?:\#|no\.)?[ \t]*\(?[0-9]{1,3}[a-z]?\)?)?   # "Question 1", "Q2", "Question #3", "(4)"
    [ \t]*(?P<close>[*_]{1,3})?[ \t]*
    (?P<punct>[:：]|[.)]|[-–—](?=\s))?
    [ \t]*(?:[*_]{1,3})?
    """,
    re.IGNORECASE | re.VERBOSE,
)


@dataclass
class QAParse:
    """What :func:`parse_qa_blocks` found in one output."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    no_qa: bool = False  # the output contains the [NO QA] sentinel
    issues: Counter[str] = field(default_factory=Counter)
    reason: str | None = None  # why there are no pairs (None when there are)


def _label_at(line: str) -> tuple[str, int] | None:
    """("q" | "a", end offset of the label) when ``line`` starts with a Q/A label, else None.

    Full words (Question/Answer/Solution, any case) count with a colon, as a markdown heading, in
    bold, or numbered with "." / ")" / "-". Single letters count only as upper-case ``Q:`` / ``A:``
    ("A ball is thrown", "a: 3 m/s²" are prose).
    """
    m = _LABEL.match(line)
    if not m:
        return None
    word = m.group("word")
    kind = "q" if word.lower() in ("question", "q") else "a"
    punct = m.group("punct")
    colon = punct in (":", "：")
    if len(word) == 1:
        return (kind, m.end()) if colon and word.isupper() else None
    bold = m.group("open") is not None and m.group("close") is not None
    numbered = bool((m.group("num") or "").strip())
    if colon or m.group("heading") or bold or (numbered and punct is not None):
        return kind, m.end()
    return None


def _clean(text: str) -> str:
    text = text.strip()
    # Emphasis or separators a model wraps around a block ("**", "---" before the next pair).
    text = re.sub(r"(?:\n[ \t]*(?:-{3,}|\*{3,}|_{3,}|={3,})[ \t]*)+$", "", text).strip()
    text = text.strip("*_").strip()
    return text


def parse_qa_blocks(text: str | None) -> QAParse:
    """Pairs of a model output, robust to the formats real models emit (see module doc)."""
    result = QAParse()
    if text is None or not text.strip():
        result.reason = EMPTY_OUTPUT
        return result
    text = _THINK.sub("", text, count=1)
    result.no_qa = bool(_NO_QA.search(text))

    # Walk lines; a label starts a new block. Labels inside code fences or quotes are content.
    blocks: list[tuple[str, list[str]]] = []  # (kind, lines)
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        label = None if in_fence or line.lstrip().startswith(">") else _label_at(line)
        if label is None:
            if blocks:
                blocks[-1][1].append(line)
            continue
        kind, end = label
        blocks.append((kind, [line[end:]]))

    question: str | None = None
    for kind, lines in blocks:
        body = _clean("\n".join(lines))
        if kind == "q":
            if question is not None:
                result.issues[QUESTION_WITHOUT_ANSWER] += 1
            question = body
            continue
        if question is None:  # a second "Answer:" / "Solution:" inside an answer continues it
            if result.pairs:
                q, a = result.pairs[-1]
                result.pairs[-1] = (q, f"{a}\n{body}".strip())
            else:
                result.issues[ANSWER_WITHOUT_QUESTION] += 1
            continue
        if not question:
            result.issues[EMPTY_QUESTION] += 1
        elif not body:
            result.issues[EMPTY_ANSWER] += 1
        else:
            result.pairs.append((_strip_no_qa(question), _strip_no_qa(body)))
        question = None
    if question is not None:
        result.issues[QUESTION_WITHOUT_ANSWER] += 1

    result.pairs = [(q, a) for q, a in result.pairs if q and a]
    if not result.pairs:
        if result.no_qa:
            result.reason = NO_QA
        elif result.issues[QUESTION_WITHOUT_ANSWER] or result.issues[EMPTY_ANSWER]:
            result.reason = NO_ANSWER
        else:
            result.reason = MALFORMED
    return result


_NO_QA_LINE = re.compile(r"\n?[ \t]*[*_]*\[\s*NO[\s_-]*QA\s*\][^\n]*", re.IGNORECASE)


def _strip_no_qa(text: str) -> str:
    # "[NO QA] for the rest" left after the last pair: the sentinel's line is commentary, not answer.
    return _NO_QA_LINE.sub("", text).strip() if _NO_QA.search(text) else text


# -- the reference post-processor, reproduced --------------------------------------------------------
_REFERENCE = re.compile(r"Question:\s*(.*?)\s*Answer:\s*(.*?)(?=\s*Question:|$)", re.DOTALL)


def parse_qa_reference(text: str | None) -> list[tuple[str, str]]:
    """The reference parser's pairs (its quirks documented in the module doc).

    Raises:
        TypeError: for ``None``, as the reference does (it then skips the rest of the file).
    """
    if text is None:
        raise TypeError("extract_qa output is None (the reference parser raises here)")
    return [(_ref_clean(q), _ref_clean(a)) for q, a in _REFERENCE.findall(text)]


def _ref_clean(text: str) -> str:
    return text.strip().strip("*").strip()
