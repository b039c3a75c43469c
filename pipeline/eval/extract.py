"""Answer extraction: turn a model's raw completion into the answer a scorer compares with the gold.

Every extractor here reproduces the reference evaluation system (GAIR-NLP/lm-open-science-evaluation,
SPEC-eval §2) including its quirks, because the paper's numbers were produced with them; the
*flexible* variants at the bottom add what the reference misses and are reported beside it, never
instead of it.

- :func:`extract_option_label` — multiple choice, SPEC-eval §2.1: 11 indicator/format patterns
  ("The answer is (B)", "Answer: B", "B is correct", "\\boxed{B}", …) tried in priority order on the
  last line, then on the whole text; case-insensitive; the *earliest* match wins; no word boundaries
  (so "The answer is a function …" yields ``a``, as in the reference).
- :func:`extract_option_content` — SPEC-eval §2.2: the option *text* after an indicator, mapped to
  its letter; case-sensitive.
- :func:`extract_mc` — both, with the sentinel :data:`MC_FAILED` ("placeholder") on failure.
- :func:`extract_math_answers` — GSM8K/MATH/MATH500/ChemBench-str, SPEC-eval §2.5: Minerva format,
  then *every* ``\\boxed{}``, then "the answer is", then a program output block, then the last number;
  each candidate normalised by :func:`strip_string`.
- :func:`extract_scibench` — SPEC-eval §2.4: the content of the last ``\\boxed{}`` after any "=".
- :func:`extract_olympiad` — SPEC-eval §2.7: the last box or the whole output, normalised.

Each regex search runs on text the scorer has already bounded (outputs are capped by max_tokens),
and the scorer runs in a subprocess with a per-item timeout, so a pathological backtracking case
costs that item, not the run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MC_FAILED = "placeholder"  # the reference's sentinel: always scored wrong, counted as an extraction failure

# -- multiple choice: option labels (SPEC-eval §2.1) --------------------------------------------

# DECOR-PRE: decoration before the letter: "**", "$", "(", "[", "\boxed{", "\text{" … then spaces.
# The reference writes it as (?:[*${([\\]*?(?:\\boxed\{|…)?)* - the same language, but the nested
# quantifiers backtrack exponentially on a long run of "(" (it needed a 5 s alarm per search).
# As one alternation it matches the same strings in linear time per start position.
_TOKEN = r"(?:\\boxed\{|\\mathbf\{|\\mathrm\{|\\text\{)"
_PRE = r"(?:[\*\$\{\(\[\\]|" + _TOKEN + r")*\s*"
# DECOR-POST: closing decoration after the letter (any run of \ } $ ) ]; same language as the
# reference's (?:\\?\}?\$?\)?\]?\}?)*).
_POST = r"[\\\}\$\)\]]*"
_END = r"(?:\s|:|\.|\*|\)|$)"
# Patterns that begin with DECOR-PRE only start where a run of decoration starts: a match inside
# the run implies one at its start (DECOR-PRE absorbs the rest), so the earliest match is the same,
# and a long run of "(" is scanned once instead of once per character (quadratic otherwise).
# Same for whitespace: after a blank, only a decoration character can start a match that a start
# at the blank would miss (DECOR-PRE's blanks come last).
_RUN_START = r"(?<![\*\$\{\(\[\\])(?:(?<!\s)|(?=[\*\$\{\(\[\\]))"
_KEY = r"(?:answer|option|choice|result)"


def _label_patterns(letters: str) -> list[re.Pattern[str]]:
    letter = f"([{re.escape(letters)}])"
    body = _PRE + letter + _POST + _END
    sources = [
        # 0 "The answer is B." / "The correct answer is **B**." / "the best option is $\boxed{B}$"
        r"the\s+(?:\w+\s+)?" + _KEY + r"(?:\w+\s*)?\s+is?:?\s*" + body,
        # 1-4 "Answer: B", "**Answer:** B", "Option: (C)"
        r"answer[\*\s]*:\s*" + body,
        r"option[\*\s]*:\s*" + body,
        r"choice[\*\s]*:\s*" + body,
        r"result[\*\s]*:\s*" + body,
        # 5 "answer should be C", "option C"
        _KEY + r"\w*\s+(?:should be|must be)?:?" + body,
        # 6 "answer is probably C"
        _KEY + r"\w*\s+is?\s+probably?:?" + body,
        # 7 "B is correct", "A seems correct". Whitespace, optional is/seems, whitespace, as the
        # reference spells it: "B correct" (one blank) does not match, nor does "the correct".
        _RUN_START + _PRE + letter + _POST + r"\s+(?:is|seems)?\s+correct",
        # 8 "D is the right answer"
        _RUN_START + _PRE + letter + _POST + r"\s+(?:is|seems)?\s+the?\s+(?:right|correct)?\s+" + _KEY,
        # 9 "answer is A"
        _KEY + r"\w*\s+is?:?\s*" + body,
        # 10 "\boxed{C}", "\mathbf{C}", "\text{A}"
        r"\\(?:boxed|mathbf|mathrm|text)\{" + letter + r"\}",
    ]
    return [re.compile(s, re.IGNORECASE) for s in sources]


_LABEL_CACHE: dict[str, list[re.Pattern[str]]] = {}


def _patterns_for(letters: str) -> list[re.Pattern[str]]:
    if letters not in _LABEL_CACHE:
        _LABEL_CACHE[letters] = _label_patterns(letters)
    return _LABEL_CACHE[letters]


def _last_line(text: str) -> str:
    return text.rstrip().rsplit("\n", 1)[-1]


def extract_option_label(text: str, letters: str) -> str | None:
    """The option letter a response commits to, as the reference finds it (SPEC-eval §2.1).

    Patterns are tried in priority order on the last line, then on the whole text; within a
    pattern the *earliest* match wins. The letter is returned as written (may be lower case);
    compare case-insensitively. ``None`` when nothing matches.
    """
    patterns = _patterns_for(letters)
    for scope in (_last_line(text), text):
        for pattern in patterns:
            match = pattern.search(scope)
            if match:
                return match.group(1)
    return None


def extract_option_content(text: str, options: Sequence[str]) -> str | None:
    """The letter of an option whose *text* follows an indicator (SPEC-eval §2.2), else ``None``.

    Case-sensitive, options tried as one alternation in list order; the matched text maps to the
    first option equal to it. Note the reference's pattern C1 has no colon: "Answer: Mitochondria."
    does not match.
    """
    options = [str(o) for o in options]
    if not options or not any(options):
        return None
    alt = "(" + "|".join(re.escape(o) for o in options if o) + ")"
    patterns = [
        re.compile(r"[Tt]he\s+(?:\w+\s+)?(?:answer|option)\w*\s+is:?" + _PRE + alt + _POST + _END),
        re.compile(r"(?i:answer)\s*" + _PRE + alt + _POST + _END),
        # "^[^\w\n]*" + DECOR-PRE, rewritten so the runs cannot trade characters (quadratic
        # otherwise): decoration and blanks other than newlines are already in [^\w\n].
        re.compile(
            r"^[^\w\n]*(?:" + _TOKEN + r"(?:[\*\$\{\(\[\\]|" + _TOKEN + r")*\s*|\n\s*)?" + alt + _POST + _END
        ),
    ]
    for scope in (_last_line(text), text):
        for pattern in patterns:
            match = pattern.search(scope)
            if match:
                return chr(65 + options.index(match.group(1)))
    return None


def extract_mc(text: str, letters: str, options: Sequence[str]) -> str:
    """Reference multiple-choice extraction: label patterns, then option text, else :data:`MC_FAILED`."""
    label = extract_option_label(text, letters)
    if label is not None:
        return label
    by_content = extract_option_content(text, options)
    return by_content if by_content is not None else MC_FAILED


# Flexible fallback: the last standalone letter in a committed form, with word boundaries
# (what lm-evaluation-harness's flexible-extract does: the last "(X)").
_FLEX_FORMS = (
    r"\(([{L}])\)",  # "(B)"
    r"\*\*([{L}])\*\*",  # "**B**"
    r"\\boxed\{\s*\(?([{L}])\)?\s*\}",  # "\boxed{(B)}"
    r"(?:^|\n)\s*([{L}])[\.\):]?\s*$",  # a line that is only "B" / "B." / "B)"
)


def extract_mc_flexible(text: str, letters: str, options: Sequence[str]) -> str:
    """Reference extraction; when it fails, the *last* standalone committed letter (see ``_FLEX_FORMS``)."""
    strict = extract_mc(text, letters, options)
    if strict != MC_FAILED:
        return strict
    best: tuple[int, str] | None = None
    for form in _FLEX_FORMS:
        for match in re.finditer(form.replace("{L}", re.escape(letters)), text):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1))
    return best[1] if best else MC_FAILED


# -- math answers (SPEC-eval §2.5) ---------------------------------------------------------------


def _fix_fracs(string: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``, ``\frac1b`` -> ``\frac{1}{b}`` (the MATH normaliser's rule)."""
    parts = string.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
            continue
        a, b = part[0], part[1]
        if b != "{":
            out += "{" + a + "}{" + b + "}" + part[2:]
        else:
            out += "{" + a + "}" + part[1:]
    return out


def _fix_a_slash_b(string: str) -> str:
    if len(string.split("/")) != 2:
        return string
    a, b = string.split("/")
    try:
        ia, ib = int(a), int(b)
    except ValueError:
        return string
    if string != f"{ia}/{ib}":
        return string
    return "\\frac{" + str(ia) + "}{" + str(ib) + "}"


def _fix_sqrt(string: str) -> str:
    return re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", string)


def _fix_tan(string: str) -> str:
    return re.sub(r"\\tan(\w+)", r"\\tan{\1}", string)


def strip_string(string: str) -> str:
    """The reference's answer normalisation, rule by rule in its order (SPEC-eval §2.5)."""
    string = str(string).strip()
    string = string.replace("\n", "")
    string = string.rstrip(".")
    string = string.replace("\\!", "")
    whole_text = re.fullmatch(r"\\text\{(.*)\}", string)
    if whole_text:
        string = whole_text.group(1)
    string = string.replace("tfrac", "frac").replace("dfrac", "frac").replace("cfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    without_unit = re.sub(r"\\text\{.*?\}$", "", string).strip()
    if without_unit and without_unit != string:
        string = without_unit
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = re.sub(r"\{(?:cm|m|mm)\}(?:\^[23])?", "", string)
    string = re.sub(r"\s*p\.m\.$", "", string)
    string = re.sub(r"(\d)\s*t$", r"\1", string)
    string = string.replace("\\$", "").replace("$", "")
    string = string.replace("x\\in", "")
    string = string.replace("\\%", "%")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    string = string.replace("\\cdot", "")
    string = string.replace("infinity", "\\infty")
    if "\\infty" not in string:
        string = string.replace("inf", "\\infty")
    string = string.replace("\\mathbf", "").replace("\\mathrm", "")
    string = re.sub(r"\\mbox\{.*?\}", "", string)
    if "j" in string and "i" not in string:
        string = string.replace("j", "i")
    string = re.sub(r"(\d+)\.0+([^\d])", r"\1\2", string)
    string = re.sub(r"(\d+)\.0+$", r"\1", string)
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    string = _fix_sqrt(string)
    string = _fix_tan(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    string = _fix_a_slash_b(string)
    string = string.rstrip("\\,.")
    return string


def boxed_contents(text: str) -> list[str]:
    """The content of every ``boxed{…}`` with balanced braces, in order (a ``}%`` keeps the ``%``)."""
    out = []
    for piece in text.split("boxed{")[1:]:
        depth, content = 1, []
        for i, ch in enumerate(piece):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    if piece[i + 1 : i + 2] == "%":
                        content.append("%")
                    break
            content.append(ch)
        else:
            continue  # unbalanced: the box never closes
        out.append("".join(content))
    return out


_NUMBER = re.compile(r"-?\d*\.?\d+")


def _raw_math_candidates(text: str) -> list[str]:
    if "Problem:" in text:
        text = text.split("Problem:", 1)[0]
    if "final answer is $" in text and "$. I hope" in text:
        return [text.split("final answer is $", 1)[1].split("$. I hope", 1)[0]]
    if "boxed" in text:
        return boxed_contents(text)  # "boxed" without "{": [] and no fallback, as the reference
    if "he answer is" in text:
        return [text.rsplit("he answer is", 1)[1]]
    if "```output" in text:
        block = text.rsplit("```output", 1)[1]
        return [block.split("```", 1)[0].strip()]
    numbers = _NUMBER.findall(text.replace(",", ""))
    return [numbers[-1]] if numbers else []


def _clean_candidate(candidate: str) -> str:
    candidate = candidate.strip().split("\n", 1)[0] if candidate.strip() else ""
    candidate = candidate.removeprefix(":").strip()
    candidate = candidate.rstrip("./")
    return strip_string(candidate)


def extract_math_answers(text: str, question: str = "") -> list[str]:
    """Normalised answer candidates of a math-style response (SPEC-eval §2.5).

    A question asking for answers "separated by commas" splits a candidate without brackets on
    commas; one with ``\\text{ and }`` splits on it.
    """
    answers: list[str] = []
    for raw in _raw_math_candidates(text):
        candidate = _clean_candidate(raw)
        if "separated by commas" in question and not any(c in candidate for c in "()[]"):
            answers.extend(part for part in candidate.split(",") if part)
        elif "\\text{and}" in candidate:
            answers.extend(part for part in candidate.split("\\text{and}") if part)
        else:
            answers.append(candidate)
    return answers


def last_boxed_raw(text: str) -> str | None:
    """The raw content of the last ``\\boxed{}`` (no normalisation), for the flexible math check."""
    boxes = boxed_contents(text)
    return boxes[-1] if boxes else None


# -- SciBench (SPEC-eval §2.4) -------------------------------------------------------------------


def extract_scibench(text: str) -> str | None:
    """The content of the last ``\\boxed{}``; after the last "=" if it has one; else ``None``.

    The reference finds the last "oxed" and requires "oxed{": ``\\fbox`` answers come out as None.
    """
    start = text.rfind("oxed")
    if start < 0 or not text.startswith("oxed{", start):
        return None
    depth, i = 0, start + len("oxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                content = text[i + 1 : j]
                if "=" in content:
                    content = content.rsplit("=", 1)[1].lstrip()
                return content
    return None


# -- OlympicArena (SPEC-eval §2.7) ---------------------------------------------------------------


def normalize_olympiad(answer: str) -> str:
    """OlympicArena's answer normalisation (units, degrees, wrappers, fraction/sqrt shorthands)."""
    s = answer
    for token in ("\\left", "\\right", "$", "%", "^\\circ", "^{\\circ}"):
        s = s.replace(token, "")
    s = s.replace("：", ":").replace("，", ",")
    s = re.sub(r"\\(?:approx|simeq|sim)(?![a-zA-Z])", "=", s)
    s = s.replace("^\\prime", "'")
    for _ in range(3):  # nested wrappers
        s = re.sub(r"\\(?:mathrm|mathbf|text|textbf)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"frac(\d)(\d)", r"frac{\1}{\2}", s)
    s = re.sub(r"sqrt(\d)", r"sqrt{\1}", s)
    return s.strip()


def extract_olympiad(text: str) -> str:
    """The last ``\\boxed{}`` content, or the whole output when there is none (then normalised)."""
    boxed = last_boxed_raw(text)
    return normalize_olympiad(boxed if boxed else text)
