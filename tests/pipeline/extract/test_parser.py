"""The QA-block parsers on a corpus of realistic model outputs (written by us, in the shapes that
instruction-tuned models actually produce for extraction prompts)."""

from __future__ import annotations

import pytest

from pipeline.extract.parser import (
    ANSWER_WITHOUT_QUESTION,
    EMPTY_OUTPUT,
    MALFORMED,
    NO_ANSWER,
    NO_QA,
    QUESTION_WITHOUT_ANSWER,
    parse_qa_blocks,
    parse_qa_reference,
)

# name, output, expected pairs (robust parser), expected reason when there are none
CASES: list[tuple[str, str, list[tuple[str, str]], str | None]] = [
    (
        "asked_format_one_pair",
        "Question: A 2.0 kg block slides down a frictionless incline of 30°. What is its acceleration?\n"
        "Answer: Along the incline a = g sin θ = 9.8 m/s² × 0.5 = 4.9 m/s².",
        [
            (
                "A 2.0 kg block slides down a frictionless incline of 30°. What is its acceleration?",
                "Along the incline a = g sin θ = 9.8 m/s² × 0.5 = 4.9 m/s².",
            )
        ],
        None,
    ),
    (
        "asked_format_two_pairs",
        "Question: What is the pH of 0.01 M HCl?\nAnswer: HCl dissociates fully, so [H+] = 0.01 M and pH = 2.\n\n"
        "Question: What is the pOH of that solution at 25 °C?\nAnswer: pOH = 14 − 2 = 12.",
        [
            ("What is the pH of 0.01 M HCl?", "HCl dissociates fully, so [H+] = 0.01 M and pH = 2."),
            ("What is the pOH of that solution at 25 °C?", "pOH = 14 − 2 = 12."),
        ],
        None,
    ),
    (
        "multiline_answer_with_steps",
        "Question: Show that the sum of the first n odd numbers is n².\n"
        "Answer: Proceed by induction.\nBase case: n = 1 gives 1 = 1².\n"
        "Step: if 1 + 3 + … + (2n − 1) = n², adding 2n + 1 gives n² + 2n + 1 = (n + 1)².",
        [
            (
                "Show that the sum of the first n odd numbers is n².",
                "Proceed by induction.\nBase case: n = 1 gives 1 = 1².\n"
                "Step: if 1 + 3 + … + (2n − 1) = n², adding 2n + 1 gives n² + 2n + 1 = (n + 1)².",
            )
        ],
        None,
    ),
    ("no_qa_sentinel", "[NO QA]", [], NO_QA),
    ("no_qa_with_spaces_and_case", "[ no qa ]", [], NO_QA),
    ("no_qa_underscore", "[NO_QA]", [], NO_QA),
    ("no_qa_with_explanation", "The extract is a table of contents.\n\n[NO QA]", [], NO_QA),
    ("no_qa_in_bold", "**[NO QA]**", [], NO_QA),
    ("empty_output", "", [], EMPTY_OUTPUT),
    ("whitespace_output", "   \n\n  ", [], EMPTY_OUTPUT),
    (
        "bold_labels",
        "**Question:** Why is the sky blue?\n**Answer:** Rayleigh scattering ∝ 1/λ⁴.",
        [("Why is the sky blue?", "Rayleigh scattering ∝ 1/λ⁴.")],
        None,
    ),
    ("bold_label_colon_outside", "**Question**: What is 3!?\n**Answer**: 6.", [("What is 3!?", "6.")], None),
    (
        "numbered_labels",
        "Question 1: Define the marginal cost.\nAnswer 1: The cost of producing one more unit.\n\n"
        "Question 2: If TC = 5q², what is MC at q = 3?\nAnswer 2: MC = 10q = 30.",
        [
            ("Define the marginal cost.", "The cost of producing one more unit."),
            ("If TC = 5q², what is MC at q = 3?", "MC = 10q = 30."),
        ],
        None,
    ),
    (
        "numbered_bold",
        "**Question 1:** What is ATP?\n**Answer 1:** Adenosine triphosphate.",
        [("What is ATP?", "Adenosine triphosphate.")],
        None,
    ),
    (
        "numbered_hash",
        "Question #3: Name the base.\nAnswer #3: Guanine.",
        [("Name the base.", "Guanine.")],
        None,
    ),
    ("q_a_short_labels", "Q: What is Ohm's law?\nA: V = IR.", [("What is Ohm's law?", "V = IR.")], None),
    ("q_numbered_short", "Q1: 2+2?\nA1: 4\nQ2: 3+3?\nA2: 6", [("2+2?", "4"), ("3+3?", "6")], None),
    (
        "lower_case_labels",
        "question: what is entropy?\nanswer: a measure of the number of microstates.",
        [("what is entropy?", "a measure of the number of microstates.")],
        None,
    ),
    (
        "upper_case_labels",
        "QUESTION: WHAT IS A PRIME?\nANSWER: A NUMBER WITH EXACTLY TWO DIVISORS.",
        [("WHAT IS A PRIME?", "A NUMBER WITH EXACTLY TWO DIVISORS.")],
        None,
    ),
    (
        "markdown_headings",
        "### Question 1\nA ball is dropped from 20 m. How long does it fall?\n\n### Answer\n"
        "t = √(2h/g) = √(40/9.8) ≈ 2.0 s.",
        [("A ball is dropped from 20 m. How long does it fall?", "t = √(2h/g) = √(40/9.8) ≈ 2.0 s.")],
        None,
    ),
    (
        "heading_with_colon",
        "## Question: What is a ligand?\n## Answer: A molecule that binds a metal.",
        [("What is a ligand?", "A molecule that binds a metal.")],
        None,
    ),
    (
        "preamble_and_closing",
        "Here are the question-answer pairs extracted from the text:\n\nQuestion: What is GDP?\n"
        "Answer: The market value of final goods and services produced in a year.",
        [("What is GDP?", "The market value of final goods and services produced in a year.")],
        None,
    ),
    (
        "numbered_list_bullets",
        "1. **Question:** What is a vector?\n   **Answer:** A quantity with magnitude and direction.\n"
        "2. **Question:** What is a scalar?\n   **Answer:** A quantity with magnitude only.",
        [
            ("What is a vector?", "A quantity with magnitude and direction."),
            ("What is a scalar?", "A quantity with magnitude only."),
        ],
        None,
    ),
    (
        "dash_bullets",
        "- Question: What is mitosis?\n- Answer: Division of a nucleus into two identical nuclei.",
        [("What is mitosis?", "Division of a nucleus into two identical nuclei.")],
        None,
    ),
    (
        "solution_label",
        "Question: Integrate x dx.\nSolution: x²/2 + C.",
        [("Integrate x dx.", "x²/2 + C.")],
        None,
    ),
    ("question_without_answer_only", "Question: What is the role of the loop of Henle?", [], NO_ANSWER),
    (
        "question_without_answer_then_pair",
        "Question: What is the boiling point of water at 1 atm?\n\n"
        "Question: Why does it fall at altitude?\nAnswer: The external pressure is lower.",
        [("Why does it fall at altitude?", "The external pressure is lower.")],
        None,
    ),
    ("prose_no_labels", "This passage describes the history of thermodynamics.", [], MALFORMED),
    ("refusal", "I'm sorry, but I can't help with that request.", [], MALFORMED),
    (
        "answer_contains_question_in_code",
        "Question: Write a Python function that prints a prompt.\nAnswer: Use print:\n```python\n"
        "def ask():\n    print('Question: what is your name?')\n```\nThen call ask().",
        [
            (
                "Write a Python function that prints a prompt.",
                "Use print:\n```python\ndef ask():\n    print('Question: what is your name?')\n```\nThen call ask().",
            )
        ],
        None,
    ),
    (
        "answer_label_in_code_block",
        "Question: Show the output format.\nAnswer:\n```\nQuestion: x\nAnswer: y\n```",
        [("Show the output format.", "```\nQuestion: x\nAnswer: y\n```")],
        None,
    ),
    (
        "answer_contains_quoted_question",
        "Question: What did Feynman ask?\nAnswer: He wrote:\n> Question: what is the electron?\nand answered it.",
        [("What did Feynman ask?", "He wrote:\n> Question: what is the electron?\nand answered it.")],
        None,
    ),
    (
        "answer_mentions_question_inline",
        'Question: Define "Question:" in a survey.\nAnswer: An item whose text begins "Question:" in the form.',
        [('Define "Question:" in a survey.', 'An item whose text begins "Question:" in the form.')],
        None,
    ),
    (
        "truncated_mid_answer",
        "Question: Derive the ideal gas law.\nAnswer: Start from the kinetic theory, where",
        [("Derive the ideal gas law.", "Start from the kinetic theory, where")],
        None,
    ),
    ("truncated_after_question_label", "Question: A 5 kg mass\u2026\nAnswer:", [], NO_ANSWER),
    (
        "think_block_first",
        "<think>The extract contains one worked example.</think>\nQuestion: What is 12 × 12?\nAnswer: 144.",
        [("What is 12 × 12?", "144.")],
        None,
    ),
    (
        "separators_between_pairs",
        "Question: What is inflation?\nAnswer: A rise in the general price level.\n\n---\n\n"
        "Question: What is deflation?\nAnswer: A fall in the general price level.\n\n---",
        [
            ("What is inflation?", "A rise in the general price level."),
            ("What is deflation?", "A fall in the general price level."),
        ],
        None,
    ),
    (
        "latex_content",
        "Question: Evaluate $\\int_0^1 x^2\\,dx$.\nAnswer: $\\left[\\frac{x^3}{3}\\right]_0^1 = \\frac{1}{3}$.",
        [("Evaluate $\\int_0^1 x^2\\,dx$.", "$\\left[\\frac{x^3}{3}\\right]_0^1 = \\frac{1}{3}$.")],
        None,
    ),
    (
        "question_with_given_list",
        "Question: Given:\na: 3 m/s²\nt: 4 s\nFind the final speed from rest.\nAnswer: v = at = 12 m/s.",
        [("Given:\na: 3 m/s²\nt: 4 s\nFind the final speed from rest.", "v = at = 12 m/s.")],
        None,
    ),
    (
        "multiple_choice_options_in_question",
        "Question: Which is a noble gas?\nA) N₂\nB) Ar\nC) O₂\nAnswer: B) Ar, because its valence shell is full.",
        [("Which is a noble gas?\nA) N₂\nB) Ar\nC) O₂", "B) Ar, because its valence shell is full.")],
        None,
    ),
    (
        "prose_starting_with_a",
        "Question: Describe projectile motion.\nAnswer: A projectile moves under gravity alone.\n"
        "A ball thrown horizontally follows a parabola.",
        [
            (
                "Describe projectile motion.",
                "A projectile moves under gravity alone.\nA ball thrown horizontally follows a parabola.",
            )
        ],
        None,
    ),
    (
        "pairs_then_trailing_no_qa",
        "Question: What is a monopoly?\nAnswer: A market with a single seller.\n\n[NO QA] for the remaining text.",
        [("What is a monopoly?", "A market with a single seller.")],
        None,
    ),
    ("answer_before_question", "Answer: 42\nQuestion: What is six times seven?", [], NO_ANSWER),
    ("labels_same_line", "Question: What is 1+1? Answer: 2", [], NO_ANSWER),
    (
        "clinical_case",
        "Question: A 65-year-old man with a 40 pack-year smoking history presents with haemoptysis and "
        "weight loss. Chest X-ray shows a central mass. What is the most likely diagnosis?\n"
        "Answer: Squamous cell carcinoma of the lung, which typically arises centrally in smokers.",
        [
            (
                "A 65-year-old man with a 40 pack-year smoking history presents with haemoptysis and weight loss. "
                "Chest X-ray shows a central mass. What is the most likely diagnosis?",
                "Squamous cell carcinoma of the lung, which typically arises centrally in smokers.",
            )
        ],
        None,
    ),
    ("fullwidth_colon", "Question：What is H₂O?\nAnswer：Water.", [("What is H₂O?", "Water.")], None),
    (
        "windows_newlines",
        "Question: What is c?\r\nAnswer: 3.0e8 m/s.\r\n",
        [("What is c?", "3.0e8 m/s.")],
        None,
    ),
    ("empty_question_body", "Question:\nAnswer: 5", [], MALFORMED),
]


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize(("name", "text", "pairs", "reason"), CASES, ids=[c[0] for c in CASES])
def test_robust_parser(name, text, pairs, reason):
    result = parse_qa_blocks(text)
    assert result.pairs == pairs
    assert result.reason == reason


def test_robust_parser_reports_issues():
    result = parse_qa_blocks("Question: first?\n\nQuestion: second?\nAnswer: yes.\nQuestion: third?")
    assert result.pairs == [("second?", "yes.")]
    assert result.issues[QUESTION_WITHOUT_ANSWER] == 2
    orphan = parse_qa_blocks("Answer: 4")
    assert orphan.issues[ANSWER_WITHOUT_QUESTION] == 1 and orphan.reason == MALFORMED


def test_robust_parser_handles_none():
    assert parse_qa_blocks(None).reason == EMPTY_OUTPUT


# The reference post-processor's documented behaviour (SPEC §4), quirks included.
def test_reference_parser_asked_format_and_bold():
    assert parse_qa_reference("Question: a?\nAnswer: b\n\nQuestion: c?\nAnswer: d") == [
        ("a?", "b"),
        ("c?", "d"),
    ]
    assert parse_qa_reference("**Question:** Why?\n**Answer:** Because.") == [("Why?", "Because.")]


@pytest.mark.parametrize(
    "text",
    ["[NO QA]", "Question 1: a?\nAnswer 1: b", "Q: a?\nA: b", "question: a?\nanswer: b"],
    ids=["no_qa", "numbered", "short", "lower_case"],
)
def test_reference_parser_misses_what_it_misses(text):
    assert parse_qa_reference(text) == []


def test_reference_parser_merges_a_question_without_answer():
    pairs = parse_qa_reference("Question: lonely?\n\nQuestion: real?\nAnswer: yes")
    assert pairs == [("lonely?\n\nQuestion: real?", "yes")]


def test_reference_parser_keeps_empty_captures_and_raises_on_none():
    assert parse_qa_reference("Question:\nAnswer:") == [("", "")]
    with pytest.raises(TypeError):
        parse_qa_reference(None)


def test_robust_and_reference_agree_on_the_asked_format():
    for name, text, pairs, _ in CASES:
        if name.startswith("asked_format") or name == "multiline_answer_with_steps":
            assert parse_qa_reference(text) == pairs == parse_qa_blocks(text).pairs
