"""The records and descriptors the benchmark registry hands out.

A *benchmark* is what the paper reports one number for (``scibench``); a *subtask* is one
reference config with one data file (``scibench-physics``). Single-file benchmarks have one subtask
whose key equals the reference config key (``gsm8k``, ``math-500``). Item ids are
``<subtask key>-<index in file order>``, the reference's default id, so an id means the same item in
evaluation, in decontamination and in the reference's prediction files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

# How an item is asked and scored (SPEC-eval §1.1):
#   mc        multiple choice: options + gold letter (P-MC prompt, label extraction, letter equality)
#   math      free-form math: boxed answer vs gold string (P-BOX prompt, math equivalence)
#   scibench  a number in a given unit (P-SCI prompt, 5 % relative tolerance, scaled units)
#   olympiad  OlympicArena's typed free-form answers (its own prompt and judge)
QuestionType = Literal["mc", "math", "scibench", "olympiad"]
QUESTION_TYPES: tuple[str, ...] = ("mc", "math", "scibench", "olympiad")

Category = Literal["general", "specific", "math", "unreported"]


@dataclass(frozen=True)
class BenchmarkItem:
    """One question with its gold answer, in the reference option order.

    Args:
        benchmark: the reported benchmark (``scibench``, ``gpqa_diamond``…), see ``registry.names()``.
        subtask: the reference config key the item comes from (``scibench-physics``, ``gsm8k``).
        item_id: ``<subtask>-<index>``; stable while the file is unchanged.
        question: the question text as the file has it (the field decontamination embeds).
        options: option texts in the reference order (empty unless ``qtype == "mc"``).
        gold: the gold letter (mc), the gold answer string (math: GSM8K without commas, MATH500's
            raw ``answer``, ChemBench's ``target``; MATH: the last boxed answer of the solution,
            scored via ``solution``), SciBench's ``answer_number`` or OlympicArena's JSON answer list.
        qtype: one of :data:`QUESTION_TYPES`.
        solution: the reference solution where the file has one (MATH, MATH500, GSM8K rebuilt as
            the reference does); used as gold by MATH and as an oracle output in tests.
        meta: everything else a prompt or scorer needs, e.g. ``subject``, ``contexts`` (PubMedQA),
            ``unit``/``unit_prob``/``unit_exponent`` (SciBench), ``all_correct`` (ChemBench MC),
            ``prompt``/``answer``/``answer_type`` (OlympicArena).
    """

    benchmark: str
    subtask: str
    item_id: str
    question: str
    gold: str
    qtype: QuestionType
    options: tuple[str, ...] = ()
    solution: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def gold_index(self) -> int | None:
        """0-based index of the gold option for multiple choice, else ``None``."""
        if self.qtype != "mc":
            return None
        return ord(self.gold.upper()) - ord("A")

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "subtask": self.subtask,
            "item_id": self.item_id,
            "question": self.question,
            "options": list(self.options),
            "gold": self.gold,
            "qtype": self.qtype,
            "solution": self.solution,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkItem:
        return cls(
            benchmark=data["benchmark"],
            subtask=data["subtask"],
            item_id=data["item_id"],
            question=data["question"],
            gold=data["gold"],
            qtype=data["qtype"],
            options=tuple(data.get("options") or ()),
            solution=data.get("solution"),
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True)
class HubSource:
    """Where a subtask lives on the Hugging Face hub and how its rows map onto the reference schema.

    ``convert`` names a function in :mod:`pipeline.benchmarks.hub` (rows in, reference records out);
    ``None`` means the hub rows already have the reference fields.
    """

    path: str
    split: str
    config: str | None = None
    convert: str | None = None
    note: str = ""

    def describe(self) -> str:
        cfg = f", {self.config!r}" if self.config else ""
        return f"load_dataset({self.path!r}{cfg}, split={self.split!r})"


@dataclass(frozen=True)
class Subtask:
    """One reference config: a data file in the reference schema and how to read it.

    Args:
        key: the reference config key (also the decontamination pool's ``benchmark`` value).
        benchmark: the reported benchmark it belongs to.
        files: accepted file names relative to the benchmarks dir, first existing one wins (the
            decontamination copy's flat name first, then the evaluation repo's layout).
        reader: name of the record converter in :mod:`pipeline.benchmarks.readers`.
        qtype: how its items are asked and scored.
        question_field: the record field decontamination embeds (dotted for nested fields).
        instruction_letters: multiple choice: the letters the prompt's instruction lists
            (``ABCDEFGHIJ`` for MMLU-Pro, SuperGPQA and ChemBench whatever the option count);
            ``None``: the item's own option count.
        extraction_letters: ``"fixed"``: extraction accepts ``instruction_letters``;
            ``"count"``: only the item's own option letters.
        prompt: prompt family (``mc``, ``mc_pubmedqa``, ``box``, ``scibench``, ``olympiad``).
        option_style: how options are written in the question: ``"paren"`` = ``(A) text``,
            ``"right_paren"`` = ``A) text`` (SuperGPQA).
        hub: where to get it by name when no local file exists.
        expected_rows: rows of the reference file (for reports; ``None`` when unknown).
    """

    key: str
    benchmark: str
    files: tuple[str, ...]
    reader: str
    qtype: QuestionType
    question_field: str
    instruction_letters: str | None = None
    extraction_letters: Literal["fixed", "count"] = "count"
    prompt: str = "mc"
    option_style: Literal["paren", "right_paren"] = "paren"
    hub: HubSource | None = None
    expected_rows: int | None = None

    def find_file(self, data_dir: str | Path) -> Path | None:
        """The first of :attr:`files` present under ``data_dir``, or ``None``.

        ``data_dir`` may be ``builtin:sample-benchmarks`` (``pipeline.assets``)."""
        from pipeline.assets import resolve

        root = Path(resolve(str(data_dir)))
        for name in self.files:
            path = root / name
            if path.is_file():
                return path
        return None


@dataclass(frozen=True)
class Benchmark:
    """A reported benchmark: its subtasks and its place in the paper's averages.

    ``category`` is the paper's grouping (General / Specific / Math); MMLU is evaluated but left
    out of every reported average (``unreported``). A composite benchmark's score is the
    unweighted mean of its subtasks' accuracies, as the paper's numbers imply (SPEC-eval §4).
    """

    name: str
    display: str
    category: Category
    subtasks: tuple[Subtask, ...]
    paper_items: int | None = None

    @property
    def is_composite(self) -> bool:
        return len(self.subtasks) > 1

    @property
    def reported(self) -> bool:
        return self.category != "unreported"


@dataclass(frozen=True)
class MissingBenchmark:
    """A benchmark (or subtask, or pool entry) whose data could not be found; says where to put it."""

    key: str
    benchmark: str
    expected_files: tuple[str, ...]
    data_dir: str
    hub: str | None = None
    reason: str = "file not found"

    def message(self) -> str:
        where = " or ".join(str(Path(self.data_dir) / f) for f in self.expected_files)
        hub = f"; or fetch it by name: {self.hub}" if self.hub else ""
        return f"{self.key} ({self.benchmark}): {self.reason}: expected {where}{hub}"


class BenchmarkMissingError(FileNotFoundError):
    """Raised by ``registry.load`` when a benchmark's data is absent; lists every missing part."""

    def __init__(self, missing: list[MissingBenchmark]):
        self.missing = missing
        super().__init__("benchmark data missing:\n  " + "\n  ".join(m.message() for m in missing))


class BenchmarkFormatError(ValueError):
    """A benchmark file does not follow its reference schema; names the file, the record and the field."""


@dataclass(frozen=True)
class PoolItem:
    """One question of the decontamination pool (SPEC-pipeline §15)."""

    benchmark: str  # the pool's list key, e.g. "math-500", "NEWTON-confident-questions"
    item_id: str
    question: str


@dataclass(frozen=True)
class DecontaminationPool:
    """The questions decontamination compares against, and the pool entries whose files are absent."""

    items: list[PoolItem]
    missing: list[MissingBenchmark]
    counts: dict[str, int]  # present entries: key -> rows

    def to_arrow(self) -> pa.Table:
        """Columns ``benchmark, item_id, question`` (:data:`POOL_SCHEMA`)."""
        return pa.table(
            {
                "benchmark": [i.benchmark for i in self.items],
                "item_id": [i.item_id for i in self.items],
                "question": [i.question for i in self.items],
            },
            schema=POOL_SCHEMA,
        )


POOL_SCHEMA = pa.schema([("benchmark", pa.string()), ("item_id", pa.string()), ("question", pa.string())])
