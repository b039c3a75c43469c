"""Is an extracted answer equal to the gold? The reference rules, then math-verify for the flexible score.

Reference rules (SPEC-eval §2.3–2.7), kept because the paper's numbers depend on them:

- multiple choice: case-insensitive letter equality (:func:`mc_equal`).
- math (:func:`eval_math`): every extracted box must match a string gold (so "\\boxed{9} …
  \\boxed{18}" against 18 is wrong); MATH's list golds keep the last ``len(gold)`` predictions;
  :func:`math_equal` accepts numbers within 1e-3 absolute *including* ×100/÷100 (so 1800 and 0.18
  both "equal" 18), tuples/intervals element-wise, matrices cell-wise, single equations by
  ``lhs - rhs``, and otherwise symbolic equality (``simplify(a - b) == 0`` or numerically within 1e-3).
- SciBench (:func:`scibench_equal`): 5 % relative tolerance; with a ``10^{k}`` unit the gold is
  scaled by 10^k and the prediction must be the absolute value (plain or ``a \\times 10^{k}``).

Deviation, documented: the reference parses LaTeX with sympy's ``parse_latex`` (ANTLR 4.11); this
environment has ANTLR 4.13 (math-verify's), so :func:`_parse` uses ``latex2sympy2_extended`` (the
parser math-verify uses). Strict scores can therefore differ from the reference on a few
symbolic cases; the MATH500 gold-solution check measures by how much (docs/eval.md).

Flexible: :func:`math_verify_equal` = HF ``math-verify`` on the gold (wrapped in ``$…$``) and the
whole output (boxed answer first); :func:`scibench_equal_flexible` also reads fractions,
``a \\times 10^{k}`` on unscaled items, the mantissa of scaled items, commas in the gold and units
after the number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

# -- multiple choice ----------------------------------------------------------------------------


def mc_equal(prediction: str | None, gold: str) -> bool:
    return prediction is not None and prediction.strip().upper() == gold.strip().upper()


# -- numbers ------------------------------------------------------------------------------------


def _parse_number(text: str) -> float | None:
    """A float from "1,234", "50%", "50\\%"; ``None`` if not a plain number."""
    s = text.replace(",", "").strip()
    scale = 1.0
    if s.endswith("\\%"):
        s, scale = s[:-2], 0.01
    elif s.endswith("%"):
        s, scale = s[:-1], 0.01
    try:
        return float(s) * scale
    except ValueError:
        return None


def _is_close(a: float, b: float, abs_tol: float = 1e-3) -> bool:
    return math.isclose(a, b, abs_tol=abs_tol)


# -- symbolic -----------------------------------------------------------------------------------


def _parse(text: str) -> Any:
    """LaTeX -> sympy (latex2sympy2_extended), then plain sympy syntax, else the raw string."""
    try:
        from latex2sympy2_extended import latex2sympy

        return latex2sympy(text)
    except Exception:
        pass
    try:
        from sympy.parsing.sympy_parser import parse_expr

        return parse_expr(text)
    except Exception:
        return text


def symbolic_equal(a: str, b: str) -> bool:
    """``simplify(A - B) == 0`` or ``|N(A) - N(B)| <= 1e-3`` for the parsed expressions."""
    from sympy import N, simplify

    pa, pb = _parse(a), _parse(b)
    try:
        if pa == pb:
            return True
    except Exception:
        pass
    try:
        if simplify(pa - pb) == 0:
            return True
    except Exception:
        pass
    try:
        return abs(complex(N(pa)) - complex(N(pb))) <= 1e-3
    except Exception:
        return False


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def math_equal(prediction: str, reference: str) -> bool:
    """The reference's ``math_equal`` (include_percentage, is_close), SPEC-eval §2.6."""
    if prediction == reference:
        return True
    p_num, r_num = _parse_number(prediction), _parse_number(reference)
    if p_num is not None and r_num is not None:
        return any(_is_close(p_num, r) for r in (r_num / 100, r_num, r_num * 100))
    if not prediction:
        return False
    brackets = ("(", "[")
    if (
        prediction.startswith(brackets)
        and reference.startswith(brackets)
        and any(c in prediction[1:] for c in ")]")
        and any(c in reference[1:] for c in ")]")
    ):
        p_parts = _split_top_level(prediction[1:-1])
        r_parts = _split_top_level(reference[1:-1])
        if len(p_parts) == len(r_parts) and all(math_equal(p, r) for p, r in zip(p_parts, r_parts)):
            return True
    matrix = re.compile(r"\\begin\{[pb]matrix\}(.*)\\end\{[pb]matrix\}", re.DOTALL)
    pm, rm = matrix.search(prediction), matrix.search(reference)
    if pm and rm:
        p_rows = [row.split("&") for row in pm.group(1).strip().split("\\\\") if row.strip()]
        r_rows = [row.split("&") for row in rm.group(1).strip().split("\\\\") if row.strip()]
        if len(p_rows) == len(r_rows) and all(
            len(pr) == len(rr) and all(math_equal(a.strip(), b.strip()) for a, b in zip(pr, rr))
            for pr, rr in zip(p_rows, r_rows)
        ):
            return True
    if prediction.count("=") == 1 and reference.count("=") == 1:
        pl, pr = prediction.split("=")
        rl, rr = reference.split("=")
        p_expr, r_expr = f"{pl} - ({pr})", f"{rl} - ({rr})"
        if symbolic_equal(p_expr, r_expr) or symbolic_equal(f"-({p_expr})", r_expr):
            return True
    elif _short_assignment(prediction) and "=" not in reference:  # "x=18" against "18"
        if math_equal(prediction.split("=")[1].strip(), reference):
            return True
    elif (
        _short_assignment(reference)
        and "=" not in prediction
        and math_equal(prediction, reference.split("=")[1].strip())
    ):
        return True
    return symbolic_equal(prediction, reference)


def _short_assignment(text: str) -> bool:
    return text.count("=") == 1 and len(text.split("=")[0].strip()) <= 2


def is_correct(prediction: str, reference: str) -> bool:
    """One prediction against one gold string (``\\cup`` unions compared part by part)."""
    if "\\cup" in prediction and "\\cup" in reference:
        return eval_math(prediction.split("\\cup"), reference.split("\\cup"))
    p_num = _plain_float(prediction)
    r_num = _plain_float(reference)
    if p_num is not None and r_num is not None and abs(p_num - r_num) < 1e-3:
        return True
    if reference and prediction == reference:
        return True
    return math_equal(prediction, reference)


def _plain_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _dedupe(values: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def eval_math(predictions: Sequence[str], gold: str | Sequence[str]) -> bool:
    """The reference's ``eval_math``: a string gold must match *every* prediction; list golds
    (MATH) keep the last ``len(gold)`` distinct predictions and need a matching in both directions."""
    if isinstance(gold, str):
        golds = [gold]
        preds = list(predictions)
    else:
        golds = _dedupe(gold)
        preds = _dedupe(predictions)[-len(golds) :] if golds else []
    if not preds or not golds:
        return False
    return all(any(is_correct(p, g) for g in golds) for p in preds) and all(
        any(is_correct(p, g) for p in preds) for g in golds
    )


# -- math-verify (flexible) ---------------------------------------------------------------------


def math_verify_equal(output: str, gold: str, *, timeout_s: int | None = 5) -> bool:
    """HF math-verify: gold parsed as LaTeX (wrapped in ``$…$``), the output with boxed answers first.

    ``timeout_s`` uses SIGALRM, which only works in a process's main thread; the scorer runs it
    in its subprocess workers (pass ``None`` elsewhere).
    """
    from math_verify import parse, verify

    gold_text = gold if "$" in gold or "\\boxed" in gold else f"${gold}$"
    try:
        gold_parsed = parse(gold_text, parsing_timeout=timeout_s)
        pred_parsed = parse(output, parsing_timeout=timeout_s)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s))
    except Exception:
        return False


# -- SciBench -----------------------------------------------------------------------------------

_TEN_POWER = re.compile(r"10\^\{?\s*(-?\d+)\s*\}?")


def _equiv_with_unit(prediction: str, gold: float) -> bool:
    prediction = prediction.replace(",", "")
    try:
        if math.isclose(float(prediction.strip()), gold, rel_tol=0.05):
            return True
    except ValueError:
        pass
    try:
        return math.isclose(float(prediction.split()[0]), gold, rel_tol=0.05)
    except (ValueError, IndexError):
        return False


def scibench_equal(prediction: str | None, gold: str, unit_exponent: int) -> bool:
    """The reference's SciBench check (SPEC-eval §2.4): 5 % relative, scaled units, errors are wrong."""
    if prediction is None:
        return False
    try:
        gold_value = float(gold)
        if unit_exponent:
            gold_value *= 10**unit_exponent
            parts = re.split(r"\\times|\times|\*", prediction, maxsplit=1)  # "\t"+"imes": an unescaped \times
            if len(parts) == 2:
                power = _TEN_POWER.search(parts[1])
                if power:
                    prediction = str(float(parts[0]) * 10 ** int(power.group(1)))
        return _equiv_with_unit(prediction, gold_value)
    except Exception:
        return False


def _number_from(text: str) -> float | None:
    """A number from a SciBench answer: "1.2 \\times 10^{-3}", "\\frac{3}{4}", "5.2 m/s", "−2"."""
    s = text.replace("−", "-").replace(",", "").replace("$", "").strip()
    s = re.sub(r"\\(?:mathrm|text|mathbf)\{[^{}]*\}", "", s).strip()
    sci = re.match(r"^(-?\d*\.?\d+)\s*(?:\\times|\\cdot|\*|x|×)\s*10\^\{?\s*(-?\d+)\s*\}?", s)
    if sci:
        return float(sci.group(1)) * 10 ** int(sci.group(2))
    e_notation = re.match(r"^-?\d*\.?\d+(?:[eE][-+]?\d+)?", s)
    if e_notation:
        return float(e_notation.group(0))
    frac = re.match(r"^(-?)\\[dt]?frac\{(-?\d*\.?\d+)\}\{(-?\d*\.?\d+)\}", s)
    if frac:
        value = float(frac.group(2)) / float(frac.group(3))
        return -value if frac.group(1) else value
    return None


def scibench_equal_flexible(prediction: str | None, gold: str, unit_exponent: int) -> bool:
    """Strict, or: the number read leniently matches the absolute gold or the scaled mantissa."""
    if scibench_equal(prediction, gold, unit_exponent):
        return True
    if prediction is None:
        return False
    value = _number_from(prediction)
    gold_value = _number_from(gold)
    if value is None or gold_value is None:
        return False
    targets = [gold_value * 10**unit_exponent] + ([gold_value] if unit_exponent else [])
    return any(math.isclose(value, t, rel_tol=0.05) or (t == 0 and value == 0) for t in targets)


# -- OlympicArena (simplified judge) ------------------------------------------------------------


def olympiad_equal(prediction: str, answers: Sequence[str]) -> bool:
    """A compact version of the OlympicArena judge (SPEC-eval §2.7): each gold answer must be
    matched by the prediction (split on top-level commas when several are expected) by exact text,
    numeric closeness (absolute 1.01e-5 or relative 1e-4) or math-verify equivalence."""
    from pipeline.eval.extract import normalize_olympiad

    golds = [normalize_olympiad(str(a)) for a in answers]
    parts = [prediction] if len(golds) == 1 else _split_top_level(prediction)
    return all(any(_olympiad_one(p, g) for p in parts) for g in golds)


def _olympiad_one(prediction: str, gold: str) -> bool:
    if prediction.strip().lower() == gold.strip().lower():
        return True
    p, g = _number_from(prediction), _number_from(gold)
    if p is not None and g is not None:
        return abs(p - g) <= 1.01e-5 or math.isclose(p, g, rel_tol=1e-4)
    return math_verify_equal(f"${prediction}$", gold)
