"""Refinement, reference-answer, score and distillation parsers on written corpora."""

from __future__ import annotations

import pytest

from pipeline.curate import parsers as p
from pipeline.curate.parsers import ParseFailure, Refined

# -- refinement -----------------------------------------------------------------------------------
GOOD = (
    "The question lacks the temperature, so I add it from the document.\n\n"
    "Refined Question: An ideal gas at 300 K expands isothermally from 1 L to 2 L. What is the work done?\n"
    "Refined Answer: For an isothermal expansion, $W = nRT \\ln(V_2/V_1)$. With $n = 1$ mol, "
    "$W = 8.314 \\times 300 \\times \\ln 2 = 1729$ J. The work done is $\\boxed{1729\\text{ J}}$."
)

# (output, robust result, reference result): a Refined(question prefix, answer suffix) or a reason
REFINE_CORPUS = [
    (GOOD, ("An ideal gas at 300 K", "$\\boxed{1729\\text{ J}}$."), ("An ideal gas at 300 K", "$\\boxed{1729\\text{ J}}$.")),
    # bold markers, both styles
    ("Reasoning...\n**Refined Question:** What is 2+2?\n**Refined Answer:** 2+2 = 4.",
     ("What is 2+2?", "2+2 = 4."), ("What is 2+2?", "2+2 = 4.")),
    ("**Refined Question**: Why is the sky blue?\n**Refined Answer**: Rayleigh scattering favours short wavelengths.",
     ("Why is the sky blue?", "short wavelengths."), ("Why is the sky blue?", "short wavelengths.")),
    # markdown headings on their own lines
    ("### Refined Question\nState Newton's second law.\n\n### Refined Answer\nForce equals mass times acceleration, F = ma.",
     ("State Newton's second law.", "F = ma."), ("State Newton's second law.", "F = ma.")),
    # lower case: only the robust parser finds it
    ("refined question: What is the pH of pure water at 25 C?\nrefined answer: It is 7, because [H+] = 1e-7 M.",
     ("What is the pH", "1e-7 M."), "no_answer_marker"),
    # markers repeated in the reasoning: the last ones count
    ("I will write a Refined Question and a Refined Answer below.\n\nRefined Question: Define entropy.\n"
     "Refined Answer: Entropy is a measure of the number of microstates, S = k ln W.",
     ("Define entropy.", "S = k ln W."), ("Define entropy.", "S = k ln W.")),
    # no question marker: the reference lets the reasoning become the question
    ("The answer is fine.\nRefined Answer: The derivative of x^2 is 2x.",
     "no_question_marker", ("The answer is fine.", "2x.")),
    # no answer marker at all
    ("Refined Question: What is a prime number?", "no_answer_marker", "no_answer_marker"),
    ("I cannot refine this question without more context.", "no_answer_marker", "no_answer_marker"),
    # empty parts
    ("Refined Question:\nRefined Answer: 42", "empty_question", "empty_question"),
    ("Refined Question: What is 6 x 7?\nRefined Answer:   **  ", "empty_answer", "empty_answer"),
    # trailing note sentence removed
    ("Refined Question: What is the unit of force?\nRefined Answer: The newton, kg m/s^2. "
     "Note: this is an SI derived unit.", ("What is the unit", "kg m/s^2."), ("What is the unit", "kg m/s^2.")),
    ("Refined Question: Name the powerhouse of the cell.\nRefined Answer: The mitochondrion.\n\n"
     "(Note: plants also have chloroplasts.)", ("Name the powerhouse", "The mitochondrion."),
     ("Name the powerhouse", "The mitochondrion.")),
    # empty boxes: the sentence with the empty box and what follows in that paragraph go
    ("Refined Question: Compute 3 + 4.\nRefined Answer: Adding gives 7. The answer is $\\boxed{}$.",
     ("Compute 3 + 4.", "Adding gives 7."), ("Compute 3 + 4.", "Adding gives 7.")),
    ("Refined Question: Compute 3 + 4.\nRefined Answer: $\\boxed{}$", "empty_answer", "empty_answer"),
    ("Refined Question: Compute 5 + 5.\nRefined Answer: First paragraph: 5 + 5 = 10.\n\n"
     "So the sum is 10. The answer is \\boxed{}. Then more.\n\nTrailing paragraph.",
     ("Compute 5 + 5.", "5 + 5 = 10.\n\nSo the sum is 10."), ("Compute 5 + 5.", "5 + 5 = 10.\n\nSo the sum is 10.")),
    # the empty box opens the paragraph: it goes, and being among the last two, so does the rest
    ("Refined Question: Compute 5 + 5.\nRefined Answer: First paragraph: 5 + 5 = 10.\n\n"
     "\\boxed{} is the answer. Then more.\n\nTrailing paragraph.",
     ("Compute 5 + 5.", "First paragraph: 5 + 5 = 10."), ("Compute 5 + 5.", "First paragraph: 5 + 5 = 10.")),
    # the question still carries an answer marker word
    ("Refined Question: Find x. Refined solution\nRefined Answer: x = 3.",
     ("Find x.", "x = 3."), ("Find x.", "x = 3.")),
    ("Refined Question: Describe the solution process for this equation in detail.\nRefined Answer: Isolate x.",
     "leftover_marker", "leftover_marker"),
    # a reasoning model's thought holds draft markers
    ("<think>Draft: Refined Question: bad\nRefined Answer: bad</think>\nRefined Question: Good question?\n"
     "Refined Answer: Good answer.", ("Good question?", "Good answer."), ("Good question?", "Good answer.")),
    # truncated mid-answer: what is there is kept (the stage rejects finish_reason=length first)
    ("Refined Question: Derive the ideal gas law.\nRefined Answer: Start from the kinetic theory, where",
     ("Derive the ideal gas law.", "kinetic theory, where"), ("Derive the ideal gas law.", "kinetic theory, where")),
    ("", "empty_output", "empty_output"),
    ("   ", "empty_output", "empty_output"),
]  # fmt: skip


def _check(result, expected):
    if isinstance(expected, str):
        assert isinstance(result, ParseFailure), result
        assert result.reason == expected
    else:
        assert isinstance(result, Refined), result
        assert result.question.startswith(expected[0]), result.question
        assert result.answer.endswith(expected[1]), result.answer
        assert result.question == result.question.strip("*# \n")
        assert "Refined" not in result.question and "Refined" not in result.answer


@pytest.mark.parametrize(("text", "robust", "reference"), REFINE_CORPUS)
def test_refine_corpus(text, robust, reference):
    _check(p.parse_refined(text, "robust"), robust)
    _check(p.parse_refined(text, "reference"), reference)


def test_refine_none_and_bad_mode():
    assert p.parse_refined(None).reason == "empty_output"
    with pytest.raises(ValueError, match="unknown parse mode"):
        p.parse_refined("x", "loose")  # type: ignore[arg-type]


def test_sentence_splitter_keeps_abbreviations_and_numbers():
    text = "See Fig. 3 for the setup, e.g. The value 3.14 is used. Then x = 2! Is it? Yes."
    assert p.split_sentences(text) == [
        "See Fig. 3 for the setup, e.g. The value 3.14 is used.",
        "Then x = 2!",
        "Is it?",
        "Yes.",
    ]
    assert p.split_sentences("") == []


def test_remove_last_note_variants():
    assert p.remove_last_note("The answer is 4. Note: units omitted.") == "The answer is 4. "
    assert p.remove_last_note("The answer is 4. *(Note: approximate.)") == "The answer is 4. "
    assert p.remove_last_note("The answer is 4. It holds (Note: see above).") == "The answer is 4. "
    assert p.remove_last_note("No note here.") == "No note here."


# -- reference answers ----------------------------------------------------------------------------
# (output, robust (text, source), reference (text, source))
REFERENCE_CORPUS = [
    ("Reference Answer: $\\boxed{42}$", ("42", "boxed"), ("42", "boxed")),
    ("The final value is $\\boxed{\\frac{1}{2}}$.", ("\\frac{1}{2}", "boxed"), ("\\frac{1}{2}", "boxed")),
    ("$\\boxed{\\{a\\}}$ is the set", ("\\{a\\}", "boxed"), ("\\{a\\}", "boxed")),
    ("Reference Answer: \\boxed{9.81 m/s^2}", ("9.81 m/s^2", "boxed"), ("\\boxed{9.81 m/s^2}", "label")),
    ("Reference Answer: 6.02 x 10^23 mol^-1", ("6.02 x 10^23 mol^-1", "label"), ("6.02 x 10^23 mol^-1", "label")),
    ("**Reference Answer:** Mitochondria", ("Mitochondria", "label"), ("** Mitochondria", "label")),
    ("## Reference Answer\nThe Krebs cycle", ("The Krebs cycle", "label"), ("## Reference Answer\nThe Krebs cycle", "raw")),
    ("reference answer: O(n log n)", ("O(n log n)", "label"), ("reference answer: O(n log n)", "raw")),
    ("Thus the final answer is: 17", ("17", "final_answer_is"), ("17", "final_answer_is")),
    ("The FINAL ANSWER IS: x = 2", ("x = 2", "final_answer_is"), ("x = 2", "final_answer_is")),
    ("Positive", ("Positive", "raw"), ("Positive", "raw")),
    ("$\\boxed{A}$ then $\\boxed{B}$", ("B", "boxed"), ("B", "boxed")),
    ("<think>maybe \\boxed{3}</think>Reference Answer: 4", ("4", "label"), ("4", "label")),
    ("Reference Answer: \\boxed{\\sqrt{2", ("\\boxed{\\sqrt{2", "label"), ("\\boxed{\\sqrt{2", "label")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "robust", "reference"), REFERENCE_CORPUS)
def test_reference_answer_corpus(text, robust, reference):
    got = p.parse_reference_answer(text, "robust")
    assert (got.text, got.source) == robust
    got = p.parse_reference_answer(text, "reference")
    assert (got.text, got.source) == reference


def test_reference_answer_never_fails():
    answer = "We integrate by parts and get $\\boxed{x e^x - e^x + C}$."
    assert p.parse_reference_answer("", fallback_answer=answer) == p.ReferenceAnswer(
        "x e^x - e^x + C", "answer_boxed"
    )
    assert p.parse_reference_answer(None, fallback_answer="It is 5.") == p.ReferenceAnswer(
        "It is 5.", "answer"
    )
    assert p.parse_reference_answer("<think>unfinished", fallback_answer="").text == ""
    assert p.parse_reference_answer("", "reference") == p.ReferenceAnswer("", "raw")


# -- difficulty scores ----------------------------------------------------------------------------
SCORE_CORPUS = [
    ("Reasoning: correct and complete.\nScore: 10", 10),
    ("Reasoning: partially right.\nScore: 6", 6),
    ("**Score:** 3", 3),
    ("Score：7", 7),
    ("评分: 8", 8),
    ("得分：2", 2),
    ("Score: 4\nOn reflection, Score: 5", 5),
    ("Score: 11\nScore: 9", 9),
    ("The grade is \\boxed{7}.", 7),
    ("Score: 100", -1),
    ("I would give it a seven.", -1),
    ("<think>Score: 2</think>Score: 8", 8),
    ("", -1),
    ("Reasoning: The student", -1),
]


@pytest.mark.parametrize(("text", "score"), SCORE_CORPUS)
def test_score_corpus(text, score):
    assert p.parse_score(text) == score


def test_clean_distilled():
    assert p.clean_distilled("<think>hmm</think>\n\nStep 1. ... $\\boxed{2}$") == "Step 1. ... $\\boxed{2}$"
    assert p.clean_distilled(None) == ""
