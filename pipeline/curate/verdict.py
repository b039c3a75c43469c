"""The one YES/NO verdict parser of every judge stage (CoT judge, quality filter, decontamination).

Two modes:

- ``robust`` (default): reads what models really write after the ``Decision:`` label —
  ``Decision: YES``, ``Decision: **YES**``, ``**Decision:** NO``, ``Decision: [NO]``,
  ``decision: yes``, ``## Decision\\nNO`` — and a bare ``YES``/``NO`` answer. A ``<think>`` block is
  ignored (a reasoning model's musings are not its verdict). Words are matched whole, so "Note",
  "Now", "None" and "NOT" are never read as NO. Anything else is unparseable (``None``).
- ``reference``: SPEC-pipeline §13 exactly, for comparing keep/drop decisions with the reference
  pipeline: the last ``Decision:\\s+(YES|Yes|NO|No)`` (no word boundary, so ``Decision: Not…``
  is No), else whichever of the substrings YES/Yes or NO/No occurs last anywhere (so a "Note:"
  after a YES turns it into No).

``None`` means unparseable; what that does is each stage's policy (drop in the CoT judge and the
filter; in decontamination a candidate without a verdict is skipped, all five → drop).
"""

from __future__ import annotations

import re
from typing import Literal

VerdictMode = Literal["robust", "reference"]

_REFERENCE_DECISION = re.compile(r"Decision:\s+(YES|Yes|NO|No)")

_THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)
# A label, optional markdown/punctuation around it, then the verdict word (whole word). Weak labels
# ("result", "final answer", "conclusion") need a colon, so prose like "the result is no longer
# valid" is not read as a verdict.
_VERDICT_WORD = r"[*_#`]*[\s\[\](\"'`*_>]*\b(?P<word>yes|no)\b"
_LABELLED = (
    re.compile(
        r"(?:(?:final\s+)?decision|verdict|judg(?:e)?ment)\s*[*_#`]*\s*(?::|-|=|\bis\b)?\s*" + _VERDICT_WORD,
        re.IGNORECASE,
    ),
    re.compile(r"(?:final\s+answer|result|conclusion)\s*[*_#`]*\s*:\s*" + _VERDICT_WORD, re.IGNORECASE),
)
_BARE = re.compile(r"^[\s\[\](\"'`*_#>.:]*\b(yes|no)\b[\s\[\])\"'`*_.!]*$", re.IGNORECASE)
_UPPER_WORD = re.compile(r"\b(YES|NO)\b")


def strip_thinking(text: str) -> str:
    """Remove ``<think>…</think>`` blocks (an unclosed one runs to the end: a truncated thought)."""
    if "</think>" in text and "<think>" not in text:  # the chat template put <think> in the prompt
        text = text.split("</think>", 1)[1]
    return _THINK_BLOCK.sub("", text)


def parse_verdict_reference(text: str | None) -> bool | None:
    """SPEC-pipeline §13, quirks included (True = YES, False = NO, None = neither found)."""
    if not text:
        return None
    matches = _REFERENCE_DECISION.findall(text)
    if matches:
        return matches[-1] in ("YES", "Yes")
    yes_pos = max(text.rfind("YES"), text.rfind("Yes"))
    no_pos = max(text.rfind("NO"), text.rfind("No"))
    if yes_pos == -1 and no_pos == -1:
        return None
    return yes_pos > no_pos


def parse_verdict_robust(text: str | None) -> bool | None:
    """The verdict a careful reader takes from ``text`` (True = YES, False = NO, None = none)."""
    if not text:
        return None
    body = strip_thinking(text).strip()
    if not body:
        return None
    labelled = [m for pattern in _LABELLED for m in pattern.finditer(body)]
    if labelled:  # the last verdict written wins (models restate a corrected decision at the end)
        return max(labelled, key=lambda m: m.end()).group("word").lower() == "yes"
    lines = [line for line in body.splitlines() if line.strip()]
    for candidate in (body, lines[-1] if lines else ""):
        bare = _BARE.match(candidate)
        if bare:
            return bare.group(1).lower() == "yes"
    # Last resort: an upper-case YES or NO standing alone, when only one of the two occurs.
    words = set(_UPPER_WORD.findall(body))
    if len(words) == 1:
        return words.pop() == "YES"
    return None


def parse_verdict(text: str | None, mode: VerdictMode = "robust") -> bool | None:
    """YES → True, NO → False, unparseable → None, in the given mode."""
    if mode == "robust":
        return parse_verdict_robust(text)
    if mode == "reference":
        return parse_verdict_reference(text)
    raise ValueError(f"unknown verdict mode {mode!r}; use 'robust' or 'reference'")
