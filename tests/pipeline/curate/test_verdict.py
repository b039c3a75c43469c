"""The shared YES/NO verdict parser on a corpus of realistic judge outputs."""

from __future__ import annotations

import pytest

from pipeline.curate.verdict import parse_verdict, parse_verdict_reference, parse_verdict_robust

# (output, robust verdict, reference verdict)
CORPUS: list[tuple[str, bool | None, bool | None]] = [
    # the format the prompts ask for
    ("Analysis: The answer explains each step with 'because'.\nDecision: YES", True, True),
    ("Analysis: A bare fact.\nDecision: NO", False, False),
    ("Analysis:\nThe two questions ask for the same value.\n\nDecision:\nYES", True, True),
    ("Analysis: ...\nDecision: Yes", True, True),
    ("Analysis: ...\nDecision: No", False, False),
    ("Analysis: ...\nDecision:   NO.", False, False),
    # markdown dress: the reference falls through to its substring search
    ("Analysis: it reasons.\nDecision: **YES**", True, True),
    ("**Analysis:** no reasoning.\n**Decision:** NO", False, False),
    ("**Analysis:** fine\n\n**Decision: YES**", True, True),
    ("Analysis: x\nDecision: [NO]", False, False),
    ("Analysis: x\nDecision: [YES]", True, True),
    ("### Analysis\nThe answer is complete.\n### Decision\nYES", True, True),
    ("Analysis: x\nDecision: `NO`", False, False),
    ("Analysis: x\n> Decision: YES", True, True),
    # lower case: the reference sees nothing it can read
    ("analysis: fine.\ndecision: yes", True, None),
    ("analysis: unclear.\ndecision: no", False, None),
    ("My decision is yes.", True, None),
    ("Final decision - no", False, None),
    # the reference's substring bug: "No" inside Note/Now/None/Not
    ("Analysis: explains why.\nDecision: **YES**\nNote: the answer could be shorter.", True, False),
    ("Decision: [YES] Now the answer is fine.", True, False),
    ("Analysis: ok\nDecision: **YES** (None of the problems apply.)", True, False),
    ("Decision: Not the same question.", None, False),
    ("Decision: None of the criteria are violated, so YES", True, False),
    ("Analysis: It is NOT self-contradictory.\nDecision: **YES**", True, True),
    ("Analysis: It is NOT valid.", None, False),
    # several decisions: the last one counts
    ("Decision: NO\nOn reflection the answer does explain itself.\nDecision: YES", True, True),
    ("Decision: YES\n\nWait. Final decision: NO", False, True),
    # bare answers
    ("YES", True, True),
    ("NO", False, False),
    ("**NO**", False, False),
    ("Yes.", True, True),
    ("no", False, None),
    ("The answer contains a derivation, so YES.", True, True),
    ("Both YES and NO could be argued here.", None, False),
    # reasoning models: the <think> block is not the verdict
    ("<think>Maybe Decision: NO? Let me check.</think>\nAnalysis: fine.\nDecision: YES", True, True),
    ("<think>The answer has no reasoning... Decision: NO", None, False),
    ("Okay, let me think.\n</think>\n\nDecision: NO", False, False),
    # weak labels need a colon; prose is not a verdict
    ("The result is no longer valid after the edit.", None, None),
    ("Result: Yes", True, True),
    ("Final Answer: NO.", False, False),
    ("Conclusion: yes", True, None),
    ("The answer provides no explanation at all.", None, None),
    # truncated and empty
    ("Analysis: The answer first computes the enthalpy and then", None, None),
    ("Analysis: The two problems differ in the numbers given; therefore Decision:", None, None),
    ("", None, None),
    ("   \n  ", None, None),
]


@pytest.mark.parametrize(("text", "robust", "reference"), CORPUS)
def test_corpus(text, robust, reference):
    assert parse_verdict_robust(text) is robust
    assert parse_verdict_reference(text) is reference
    assert parse_verdict(text) is robust
    assert parse_verdict(text, "reference") is reference


def test_none_input_and_unknown_mode():
    assert parse_verdict(None) is None
    assert parse_verdict_reference(None) is None
    with pytest.raises(ValueError, match="unknown verdict mode"):
        parse_verdict("YES", "strict")  # type: ignore[arg-type]
