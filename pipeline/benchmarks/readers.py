"""Read benchmark files in the reference record schemas and turn records into :class:`BenchmarkItem`.

One converter per file format (SPEC-eval §1.1, SPEC-pipeline §15). Each takes ``(record, index,
subtask)`` and returns a :class:`BenchmarkItem` with the options in the **reference order** and the
gold answer the reference scores against; the data quirks the paper's numbers depend on are kept:

- GPQA: the reference seeds ``random`` with 42 before *every* item and shuffles
  [correct, incorrect 1, incorrect 2, incorrect 3], so every item gets the same permutation and the
  gold is always "D". :data:`GPQA_REFERENCE_ORDER` recomputes that permutation.
- ChemBench multiple choice: the gold is the *first* option with score 1 (394 of 2,544 items have
  several); all of them are kept in ``meta["all_correct"]``.
- MATH500: the gold is the raw ``answer`` field, not normalised. GSM8K: ``answer`` without commas.
- SciBench: ``unit_prob`` is the unit after a ``10^{k}`` scale factor, ``unit_exponent`` is k.

A record that lacks a field its format needs raises :class:`BenchmarkFormatError` naming the file,
the record index and the field.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.benchmarks.types import BenchmarkFormatError, BenchmarkItem, Subtask

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _reference_gpqa_order() -> tuple[int, ...]:
    # process_gpqa_sft: random.seed(42) then random.shuffle([correct, inc1, inc2, inc3]).
    order = [0, 1, 2, 3]
    random.Random(42).shuffle(order)
    return tuple(order)


# Indices into [correct, incorrect 1, incorrect 2, incorrect 3]: (2, 1, 3, 0) under CPython 3.
GPQA_REFERENCE_ORDER = _reference_gpqa_order()

# SciBench unit scale factor, as the reference's regex: "$10^{-3} \mathrm{~J}$" -> exponent -3.
_SCIBENCH_SCALE = re.compile(r"\$?\s*10\^\{?(-?\d+)\}?\$?")


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """A JSON array file, or JSON lines (whatever the extension says); errors name the file and line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(
                f"{path}: not valid JSON ({exc}); expected an array of records"
            ) from None
        if not all(isinstance(r, dict) for r in data):
            raise BenchmarkFormatError(f"{path}: expected an array of JSON objects")
        return data
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(
                f"{path}:{line_no}: not valid JSON ({exc}); expected one JSON object per line or a JSON array"
            ) from None
        if not isinstance(record, dict):
            raise BenchmarkFormatError(
                f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}"
            )
        records.append(record)
    return records


class _Record:
    """Field access that raises a useful error: file, record index, field, what is there."""

    def __init__(self, record: dict[str, Any], index: int, source: str):
        self.record, self.index, self.source = record, index, source

    def fail(self, message: str) -> BenchmarkFormatError:
        return BenchmarkFormatError(f"{self.source}: record {self.index}: {message}")

    def get(self, field: str) -> Any:
        if field not in self.record:
            present = ", ".join(sorted(self.record)[:20])
            return_msg = (
                f"missing field {field!r} (fields present: {present}); is this the right file for it?"
            )
            raise self.fail(return_msg)
        return self.record[field]

    def text(self, field: str) -> str:
        value = self.get(field)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(f"field {field!r} should be text, got {type(value).__name__}")
        return str(value)

    def optional(self, field: str, default: Any = None) -> Any:
        return self.record.get(field, default)


def _item(sub: Subtask, index: int, **fields: Any) -> BenchmarkItem:
    return BenchmarkItem(
        benchmark=sub.benchmark, subtask=sub.key, item_id=f"{sub.key}-{index}", qtype=sub.qtype, **fields
    )


def _letter(r: _Record, value: Any, n_options: int, field: str) -> str:
    """A gold given as an index (int or "2") or as a letter, checked against the option count."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < n_options:
            raise r.fail(f"{field}={value} is out of range for {n_options} options")
        return LETTERS[value]
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip().upper() in LETTERS[:n_options]:
        return value.strip().upper()
    raise r.fail(f"{field}={value!r} is not an option index or a letter among {LETTERS[:n_options]}")


def _options(r: _Record, value: Any, field: str) -> list[str]:
    if isinstance(value, str):  # some dumps store lists as their Python repr
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise r.fail(f"{field} should be a list of option texts, got a string") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise r.fail(f"{field} should be a non-empty list of option texts, got {value!r:.80}")
    return [str(v) for v in value]


# -- converters, one per reference format ------------------------------------------------------


def mmlu(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    options = _options(r, r.get("choices"), "choices")
    return _item(
        sub, index, question=r.text("question"), options=tuple(options),
        gold=_letter(r, r.get("answer"), len(options), "answer"), meta={"subject": r.optional("subject")},
    )  # fmt: skip


def gpqa(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    # Option texts are stripped: some carry a trailing newline that would break the one-per-line layout.
    pool = [r.text("Correct Answer").strip()] + [r.text(f"Incorrect Answer {k}").strip() for k in (1, 2, 3)]
    options = tuple(pool[i] for i in GPQA_REFERENCE_ORDER)
    gold = LETTERS[GPQA_REFERENCE_ORDER.index(0)]
    return _item(
        sub, index, question=r.text("Question"), options=options, gold=gold,
        meta={"domain": r.optional("High-level domain"), "subdomain": r.optional("Subdomain"),
              "record_id": r.optional("Record ID")},
    )  # fmt: skip


def mmlu_pro(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    options = _options(r, r.get("options"), "options")
    return _item(
        sub, index, question=r.text("question"), options=tuple(options),
        gold=_letter(r, r.get("answer"), len(options), "answer"),
        meta={"category": r.optional("category"), "question_id": r.optional("question_id")},
    )  # fmt: skip


def super_gpqa(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    options = _options(r, r.get("options"), "options")
    return _item(
        sub, index, question=r.text("question"), options=tuple(options),
        gold=_letter(r, r.get("answer_letter"), len(options), "answer_letter"),
        meta={k: r.optional(k) for k in ("uuid", "discipline", "field", "subfield", "difficulty", "is_calculation")},
    )  # fmt: skip


def scibench_unit(unit: str) -> tuple[str, str, int]:
    """``(unit, unit_prob, exponent)`` as the reference derives them from a raw unit string.

    ``unit_prob`` is the text after a ``10^{k}`` scale factor (or the unit itself), ``exponent`` is k
    (0 without a scale factor). The reference keeps the dangling ``$`` of ``$10^{3} \\mathrm{~J}$``.
    """
    unit = unit.strip()
    match = _SCIBENCH_SCALE.search(unit)
    if not match:
        return unit, unit, 0
    return unit, unit[match.end() :].strip(), int(match.group(1))


def scibench(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    unit, unit_prob, exponent = scibench_unit(str(r.optional("unit") or ""))
    # Kept as written: the reference compares float(gold), so a gold like "89,034.79" can never be
    # matched there; the scorer reproduces that in reference mode and strips commas otherwise.
    gold = r.text("answer_number").strip()
    solution = r.optional("solution") or None
    return _item(
        sub, index, question=r.text("problem_text"), gold=gold, solution=solution,
        meta={"unit": unit, "unit_prob": unit_prob, "unit_exponent": exponent,
              "source": str(r.optional("source") or "").strip(), "problemid": str(r.optional("problemid") or "").strip()},
    )  # fmt: skip


def olympic_arena(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    answer = r.get("answer")
    if isinstance(answer, str):
        answer = [answer]
    if not isinstance(answer, list) or not answer:
        raise r.fail(
            f"answer should be a non-empty list (the test split's answers are not public), got {answer!r:.60}"
        )
    return _item(
        sub, index, question=r.text("problem"), gold=json.dumps(answer, ensure_ascii=False),
        solution=(r.optional("solution") or None) if isinstance(r.optional("solution"), str) else None,
        meta={"prompt": r.text("prompt"), "answer": answer, "answer_type": r.optional("answer_type"),
              "type_sequence": r.optional("type_sequence"), "unit": r.optional("unit"),
              "subject": r.optional("subject"), "id": r.optional("id")},
    )  # fmt: skip


def _chembench_example(r: _Record) -> dict[str, Any]:
    examples = r.get("examples")
    if isinstance(examples, str):
        examples = ast.literal_eval(examples)
    if not isinstance(examples, list) or not examples or not isinstance(examples[0], dict):
        raise r.fail("examples should be a non-empty list of {input, target, target_scores}")
    if "input" not in examples[0]:
        raise r.fail("examples[0] has no 'input'")
    return examples[0]


def chembench_mc(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    example = _chembench_example(r)
    scores = example.get("target_scores")
    if isinstance(scores, str):
        scores = json.loads(scores)
    if not isinstance(scores, dict) or not scores:
        raise r.fail("examples[0].target_scores should map option text to 0/1")
    options = tuple(str(k) for k in scores)
    correct = [LETTERS[i] for i, v in enumerate(scores.values()) if float(v) == 1.0]
    if not correct:
        raise r.fail("examples[0].target_scores has no option scored 1")
    if len(options) > len(LETTERS):
        raise r.fail(f"{len(options)} options; at most {len(LETTERS)} are supported")
    return _item(
        sub, index, question=str(example["input"]), options=options, gold=correct[0],
        meta={"all_correct": correct, "subject": r.optional("subject"), "name": r.optional("name"),
              "uuid": r.optional("uuid")},
    )  # fmt: skip


def chembench_str(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    example = _chembench_example(r)
    target = example.get("target")
    if target is None or str(target).strip() == "":
        raise r.fail("examples[0].target is empty")
    return _item(
        sub, index, question=str(example["input"]), gold=str(target),
        meta={"name": r.optional("name"), "uuid": r.optional("uuid")},
    )  # fmt: skip


def cs_bench_assertion(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    answer = r.text("Answer").strip().lower()
    if answer not in ("true", "false"):
        raise r.fail(f"Answer={answer!r} should be True or False")
    return _item(
        sub, index, question=r.text("Question"), options=("True", "False"), gold="A" if answer == "true" else "B",
        meta={"domain": r.optional("Domain"), "subdomain": r.optional("SubDomain"), "tag": r.optional("Tag")},
    )  # fmt: skip


def cs_bench_mc(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    options = tuple(r.text(k) for k in "ABCD")
    return _item(
        sub, index, question=r.text("Question"), options=options, gold=_letter(r, r.get("Answer"), 4, "Answer"),
        meta={"domain": r.optional("Domain"), "subdomain": r.optional("SubDomain"), "tag": r.optional("Tag")},
    )  # fmt: skip


def medqa(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    raw = r.get("options")
    if isinstance(raw, str):
        raw = ast.literal_eval(raw)
    if not isinstance(raw, dict) or not raw:
        raise r.fail("options should map letters to option texts")
    letters = sorted(raw)
    options = tuple(str(raw[k]) for k in letters)
    return _item(
        sub, index, question=r.text("question"), options=options,
        gold=_letter(r, r.get("answer_idx"), len(options), "answer_idx"), meta={"meta_info": r.optional("meta_info")},
    )  # fmt: skip


def medmcqa(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    options = tuple(r.text(k) for k in ("opa", "opb", "opc", "opd"))
    return _item(
        sub, index, question=r.text("question"), options=options, gold=_letter(r, r.get("cop"), 4, "cop"),
        meta={"choice_type": r.optional("choice_type"), "subject": r.optional("subject_name"), "id": r.optional("id")},
    )  # fmt: skip


_PUBMEDQA_GOLD = {"yes": "A", "no": "B", "maybe": "C"}


def pubmedqa(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    context = r.get("context")
    contexts = context.get("contexts") if isinstance(context, dict) else None
    if not isinstance(contexts, list):
        raise r.fail("context.contexts should be a list of passages")
    decision = r.text("final_decision").strip().lower()
    if decision not in _PUBMEDQA_GOLD:
        raise r.fail(f"final_decision={decision!r} should be yes, no or maybe")
    return _item(
        sub, index, question=r.text("question"), options=("Yes", "No", "Maybe"), gold=_PUBMEDQA_GOLD[decision],
        meta={"contexts": [str(c) for c in contexts], "pubid": str(r.optional("pubid"))},
    )  # fmt: skip


def piqa(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    return _item(
        sub, index, question=r.text("goal"), options=(r.text("sol1"), r.text("sol2")),
        gold=_letter(r, r.get("label"), 2, "label"),
    )  # fmt: skip


def gsm8k(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    gold = r.text("answer").replace(",", "").strip()
    cot = str(r.optional("cot") or "")
    # process_gsm8k_test's reference: the rationale, then "So the answer is $\boxed{X}$."
    solution = f"{cot}\nSo the answer is $\\boxed{{{gold}}}$." if cot else None
    return _item(
        sub, index, question=r.text("question"), gold=gold, solution=solution, meta={"id": r.optional("id")}
    )


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` (or ``\\fbox{…}``) with balanced braces, else ``None``."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


def math_test(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    solution = r.text("solution")
    boxed = last_boxed(solution)
    if boxed is None:
        raise r.fail("solution has no \\boxed{…} answer")
    return _item(
        sub, index, question=r.text("problem"), gold=boxed, solution=solution,
        meta={"level": r.optional("level"), "type": r.optional("type")},
    )  # fmt: skip


def math500(record: dict, index: int, sub: Subtask, source: str) -> BenchmarkItem:
    r = _Record(record, index, source)
    return _item(
        sub, index, question=r.text("problem"), gold=r.text("answer"), solution=r.optional("solution"),
        meta={"subject": r.optional("subject"), "level": r.optional("level"), "unique_id": r.optional("unique_id")},
    )  # fmt: skip


CONVERTERS: dict[str, Callable[[dict, int, Subtask, str], BenchmarkItem]] = {
    "mmlu": mmlu,
    "gpqa": gpqa,
    "mmlu_pro": mmlu_pro,
    "super_gpqa": super_gpqa,
    "scibench": scibench,
    "olympic_arena": olympic_arena,
    "chembench_mc": chembench_mc,
    "chembench_str": chembench_str,
    "cs_bench_assertion": cs_bench_assertion,
    "cs_bench_mc": cs_bench_mc,
    "medqa": medqa,
    "medmcqa": medmcqa,
    "pubmedqa": pubmedqa,
    "piqa": piqa,
    "gsm8k": gsm8k,
    "math": math_test,
    "math500": math500,
}


def to_items(records: list[dict[str, Any]], sub: Subtask, source: str) -> list[BenchmarkItem]:
    """Convert a file's records; the index in the list becomes the item id's number."""
    convert = CONVERTERS[sub.reader]
    return [convert(record, i, sub, source) for i, record in enumerate(records)]


def question_text(record: dict[str, Any], field: str, index: int, source: str) -> str:
    """The field decontamination embeds; ``examples.0.input`` style paths reach nested fields."""
    value: Any = record
    for part in field.split("."):
        if isinstance(value, str) and part.isdigit():
            value = ast.literal_eval(value)
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, TypeError):
            raise BenchmarkFormatError(
                f"{source}: record {index}: no question field {field!r} (fields present: "
                f"{', '.join(sorted(record)[:20])})"
            ) from None
    if not isinstance(value, str):
        raise BenchmarkFormatError(
            f"{source}: record {index}: {field!r} should be text, got {type(value).__name__}"
        )
    return value
