"""Parsers of the curation stages' model outputs (SPEC-pipeline §6, §10, §16).

- :func:`parse_refined` — ``Refined Question:`` / ``Refined Answer:`` with the reference's
  clean-up (empty ``\\boxed{}`` sentences, a trailing "Note:" sentence) and drop reasons.
- :func:`parse_reference_answer` — the concise final answer (never fails: a fallback chain).
- :func:`parse_score` — a 0–10 grade (``Score: 7``), for difficulty-based selection.
- :func:`clean_distilled` — a distilled CoT answer without a reasoning model's ``<think>`` block.

Each has a ``reference`` mode that reproduces the reference post-processor and a ``robust``
default that also reads the variants models emit (case, markdown headings, ``<think>`` blocks,
boxes without dollars or with nested braces).

Sentence splitting: the reference uses NLTK's ``sent_tokenize`` (Punkt, ``punkt_tab`` data).
NLTK's model data cannot be installed from PyPI, so :func:`split_sentences` uses NLTK when it and
its data are importable and otherwise a rule-based splitter (split after ``.``/``!``/``?`` + space
+ a capital, digit, ``$``, ``\\`` or bracket, except after common abbreviations and initials). The
two differ only on rare abbreviation cases, and only where the clean-up rules apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pipeline.curate.verdict import strip_thinking

ParseMode = Literal["robust", "reference"]

# -- sentences ------------------------------------------------------------------------------------
_ABBREVIATIONS = {
    "e.g", "i.e", "etc", "vs", "cf", "fig", "figs", "eq", "eqs", "ref", "refs", "no", "vol", "pp", "p",
    "dr", "mr", "mrs", "ms", "prof", "st", "al", "approx", "ca", "resp", "sec", "ch", "chap", "thm",
    "def", "prop", "lem", "cor", "ex", "min", "max", "inc", "ltd", "co", "jr", "sr",
}  # fmt: skip
_SENTENCE_END = re.compile(r"""[.!?]["')\]]*\s+(?=["'(\[$\\*]*[A-Z0-9$\\(\[*])""")


def _nltk_sent_tokenize():  # pragma: no cover - depends on optional data being installed
    try:
        import nltk

        nltk.data.find("tokenizers/punkt_tab")
        return nltk.sent_tokenize
    except (ImportError, LookupError):  # NLTK or its punkt_tab data absent: use the rule-based splitter
        return None


_NLTK = _nltk_sent_tokenize()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (NLTK Punkt when installed with its data, else rule-based)."""
    if _NLTK is not None:  # pragma: no cover
        return _NLTK(text)
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        head = text[start : match.start() + 1]
        last_word = re.split(r"\s", head.rstrip(".!?\"')]"))[-1].lower().strip("(")
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue  # "e.g. The", "Fig. 3", "J. Smith": not a sentence end
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# -- refinement (S3p) -----------------------------------------------------------------------------
REFINE_NO_ANSWER_MARKER = "no_answer_marker"  # no "Refined Answer" marker: nothing to split
REFINE_NO_QUESTION_MARKER = "no_question_marker"  # robust only: reasoning would leak into the question
REFINE_EMPTY_QUESTION = "empty_question"
REFINE_EMPTY_ANSWER = "empty_answer"  # empty after removing empty-box sentences and notes
REFINE_LEFTOVER_MARKER = "leftover_marker"  # the question still contains "refined answer" etc.
REFINE_EMPTY_OUTPUT = "empty_output"

_STRIP = "*# \n"
_QUESTION_MARKERS = (
    "**Refined Question:**",
    "**Refined Question**:",
    "Refined Question:",
    "Refined Question",
)
_ANSWER_MARKERS = ("**Refined Answer:**", "**Refined Answer**:", "Refined Answer:", "Refined Answer")
_LEFTOVER = ("refined answer", "solution process", "refined solution")
_LEFTOVER_SUFFIXES = ("refined answer:", "refined answer", "solution process", "refined solution")
_EMPTY_BOX = re.compile(r"\\boxed\{\s*\}")
_NOTE_PREFIXES = ("Note:", "(Note:", "*(Note:", "(*Note:")
# Robust markers: any case, optional markdown heading / bold, optional colon.
_ROBUST_QUESTION = re.compile(
    r"(?:^|\n)[ \t]*[#*_]*[ \t]*refined[ \t]+question[ \t]*[*_]*[ \t]*:?[ \t]*[*_]*", re.I
)
_ROBUST_ANSWER = re.compile(
    r"(?:^|\n)[ \t]*[#*_]*[ \t]*refined[ \t]+answer[ \t]*[*_]*[ \t]*:?[ \t]*[*_]*", re.I
)


@dataclass(frozen=True)
class Refined:
    question: str
    answer: str


@dataclass(frozen=True)
class ParseFailure:
    reason: str
    detail: str


def remove_empty_boxes(text: str) -> str:
    """Drop sentences from the first one holding an empty ``\\boxed{}`` in each such paragraph;
    a paragraph whose first sentence has it goes entirely; one in the last two ends the text."""
    paragraphs = text.split("\n\n")
    kept: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        if not _EMPTY_BOX.search(paragraph):
            kept.append(paragraph)
            continue
        sentences = split_sentences(paragraph)
        first_bad = next((i for i, s in enumerate(sentences) if _EMPTY_BOX.search(s)), len(sentences))
        if first_bad > 0:
            kept.append(" ".join(sentences[:first_bad]))
        if index >= len(paragraphs) - 2:
            break
    return "\n\n".join(kept)


def remove_last_note(text: str) -> str:
    """Cut a trailing "Note:" sentence (the prompt asks for none; models add one anyway)."""
    sentences = split_sentences(text)
    if not sentences:
        return text
    last = sentences[-1]
    for prefix in _NOTE_PREFIXES:
        if last.startswith(prefix):
            return text[: text.rfind(prefix)]
    for prefix in _NOTE_PREFIXES:
        if prefix in last:
            return text[: text.find(last)]
    return text


def _after_last_marker(text: str, markers: tuple[str, ...]) -> str | None:
    for marker in markers:
        if marker in text:
            return text[text.rfind(marker) + len(marker) :]
    return None


def _split_reference(text: str) -> tuple[str, str] | None:
    for _ in range(2):  # the reference applies the question-marker cut twice
        after = _after_last_marker(text, _QUESTION_MARKERS)
        if after is not None:
            text = after.strip(_STRIP)
    for marker in _ANSWER_MARKERS:
        if marker in text:
            cut = text.rfind(marker)
            return text[:cut], text[cut + len(marker) :]
    return None


def _split_robust(text: str) -> tuple[str, str] | ParseFailure:
    answers = list(_ROBUST_ANSWER.finditer(text))
    if not answers:
        return ParseFailure(REFINE_NO_ANSWER_MARKER, "no 'Refined Answer:' line in the output")
    answer_marker = answers[-1]
    questions = [m for m in _ROBUST_QUESTION.finditer(text) if m.end() <= answer_marker.start()]
    if not questions:
        return ParseFailure(REFINE_NO_QUESTION_MARKER, "no 'Refined Question:' line before the answer")
    return text[questions[-1].end() : answer_marker.start()], text[answer_marker.end() :]


def parse_refined(text: str | None, mode: ParseMode = "robust") -> Refined | ParseFailure:
    """The refined question and answer of a refinement output, or why there are none.

    ``reference`` follows SPEC-pipeline §6 steps A–F (last marker occurrences, the fixed marker
    list, case-sensitive). ``robust`` drops a ``<think>`` block first, matches the markers in any
    case and markdown dress at line starts, and rejects an output without a question marker
    instead of letting the reasoning above the answer become the "question".
    """
    if not text or not text.strip():
        return ParseFailure(REFINE_EMPTY_OUTPUT, "the model returned nothing")
    if mode == "robust":
        text = strip_thinking(text)
        split = _split_robust(text)
        if isinstance(split, ParseFailure):
            return split
    elif mode == "reference":
        split = _split_reference(text)
        if split is None:
            return ParseFailure(REFINE_NO_ANSWER_MARKER, "no 'Refined Answer' marker in the output")
    else:
        raise ValueError(f"unknown parse mode {mode!r}; use 'robust' or 'reference'")
    question, answer = split
    answer = remove_empty_boxes(answer.strip(_STRIP))
    answer = remove_last_note(answer.strip(_STRIP))
    if not question.strip(_STRIP):
        return ParseFailure(REFINE_EMPTY_QUESTION, "the refined question is empty")
    if not answer.strip(_STRIP):
        return ParseFailure(REFINE_EMPTY_ANSWER, "the refined answer is empty after clean-up")
    question, answer = question.strip(_STRIP), answer.strip(_STRIP)
    lowered = question.lower()
    if any(word in lowered for word in _LEFTOVER):
        for suffix in _LEFTOVER_SUFFIXES:
            if lowered.endswith(suffix):
                question = question[: -len(suffix)].strip(_STRIP)
                break
        else:
            return ParseFailure(REFINE_LEFTOVER_MARKER, "the question still contains an answer marker")
        if not question:
            return ParseFailure(REFINE_EMPTY_QUESTION, "the refined question is empty")
    return Refined(question=question, answer=answer)


# -- reference answers (S7p) ----------------------------------------------------------------------
_REFERENCE_BOXED = re.compile(r"\$\\boxed\{(.*?)\}\$")
_FINAL_ANSWER_IS = re.compile(r"final answer is:", re.IGNORECASE)
_ROBUST_LABEL = re.compile(
    r"(?:^|\n)[ \t]*[#*_]*[ \t]*(?:reference|final)[ \t]+answer[ \t]*[*_]*[ \t]*:?[ \t]*[*_]*", re.I
)

SourceKind = Literal["boxed", "label", "final_answer_is", "raw", "answer_boxed", "answer"]


@dataclass(frozen=True)
class ReferenceAnswer:
    text: str
    source: SourceKind  # which rule produced it


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}``, braces balanced (``\\boxed{\\frac{1}{2}}`` → ``\\frac{1}{2}``)."""
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, i = 0, start + len("\\boxed")
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j].strip()
        start = text.rfind("\\boxed{", 0, start)  # unbalanced (truncated): try an earlier box
    return None


def parse_reference_answer(
    text: str | None, mode: ParseMode = "robust", fallback_answer: str | None = None
) -> ReferenceAnswer:
    """The concise reference answer. Never fails (the reference stage never drops a row).

    ``reference`` (SPEC §10): the last ``$\\boxed{…}$`` (dollars required, lazy to the first
    ``}$``, one line), else the text after the last ``Reference Answer:``, else after the last
    "final answer is:" (any case), else the whole output. ``robust``: a ``<think>`` block is
    dropped, boxes need no dollars and may nest braces, the label may be dressed in markdown and
    any case; an empty output falls back to the box (or the whole text) of ``fallback_answer``
    (the detailed answer the model was given).
    """
    if mode == "reference":
        text = text or ""
        boxed = _REFERENCE_BOXED.findall(text)
        if boxed:
            return ReferenceAnswer(boxed[-1], "boxed")
        if "Reference Answer:" in text:
            return ReferenceAnswer(
                text[text.rfind("Reference Answer:") + len("Reference Answer:") :].strip(), "label"
            )
        matches = list(_FINAL_ANSWER_IS.finditer(text))
        if matches:
            return ReferenceAnswer(text[matches[-1].end() :].strip(), "final_answer_is")
        return ReferenceAnswer(text, "raw")
    if mode != "robust":
        raise ValueError(f"unknown parse mode {mode!r}; use 'robust' or 'reference'")
    body = strip_thinking(text or "").strip()
    if body:
        boxed = last_boxed(body)
        if boxed:
            return ReferenceAnswer(boxed.strip("$ "), "boxed")
        labels = list(_ROBUST_LABEL.finditer(body))
        if labels:
            value = body[labels[-1].end() :].strip().strip("*`").strip()
            if value:
                return ReferenceAnswer(value, "label")
        matches = list(_FINAL_ANSWER_IS.finditer(body))
        if matches and body[matches[-1].end() :].strip():
            return ReferenceAnswer(body[matches[-1].end() :].strip(), "final_answer_is")
        return ReferenceAnswer(body, "raw")
    answer = fallback_answer or ""
    boxed = last_boxed(answer)
    if boxed:
        return ReferenceAnswer(boxed, "answer_boxed")
    return ReferenceAnswer(answer.strip(), "answer")


# -- difficulty grades (model_eval) ---------------------------------------------------------------
_SCORE = re.compile(r"(?:Score|评分|得分)\**\s*[:：][\s*]*(\d{1,2})(?!\d)")


def parse_score(text: str | None) -> int:
    """A 0–10 grade: the last ``Score: N`` (also 评分/得分, full-width colon, bold), else the last
    ``\\boxed{N}``; -1 when there is none (SPEC §16 step 4)."""
    body = strip_thinking(text or "")
    for match in reversed(list(_SCORE.finditer(body))):
        value = int(match.group(1))
        if 0 <= value <= 10:
            return value
    boxed = last_boxed(body)
    if boxed is not None and boxed.strip().isdigit() and 0 <= int(boxed.strip()) <= 10:
        return int(boxed.strip())
    return -1


# -- distilled CoT answers ------------------------------------------------------------------------
def clean_distilled(text: str | None) -> str:
    """A distilled answer as training text: ``<think>`` blocks removed, whitespace trimmed."""
    return strip_thinking(text or "").strip()
