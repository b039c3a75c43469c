"""The ONE list of benchmarks: what the paper evaluates on, where each file lives, how it is read.

Evaluation (``pipeline.eval``) and decontamination both read benchmarks through this module, so a
question has the same id and text in both places.

- :data:`BENCHMARKS`: the paper's 15 benchmarks (SPEC-eval §1.1) in the paper's column order, each
  with its subtasks (one per reference config / data file) and its category for the averages.
- :data:`POOL`: the 23 entries of the reference decontamination list (SPEC-pipeline §15).
- :func:`load` / :func:`load_subtask`: items of a benchmark from local files (or the hub).
- :func:`availability`: which benchmarks' files are present, which are missing and where to put them.
- :func:`decontamination_pool`: ``{benchmark, item_id, question}`` for every present pool file,
  plus the missing entries (never skipped silently).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pipeline.benchmarks import hub as hub_mod
from pipeline.benchmarks import readers
from pipeline.benchmarks.types import (
    Benchmark,
    BenchmarkItem,
    BenchmarkMissingError,
    DecontaminationPool,
    HubSource,
    MissingBenchmark,
    PoolItem,
    Subtask,
)

log = logging.getLogger(__name__)

Source = Literal["auto", "local", "hub"]
ABCD, AJ = "ABCD", "ABCDEFGHIJ"


def _sub(
    key: str, benchmark: str, files: tuple[str, ...], reader: str, qtype: str, question_field: str, **kw
) -> Subtask:
    return Subtask(
        key=key,
        benchmark=benchmark,
        files=files,
        reader=reader,
        qtype=qtype,
        question_field=question_field,
        **kw,
    )  # type: ignore[arg-type]


OLYMPIC_ARENA_SUBJECTS = ("Astronomy", "Biology", "Chemistry", "Geography", "Math", "Physics")

# File names: the decontamination copy's flat name first (what ../shared/data/benchmarks holds),
# then the evaluation repository's datasets/ layout, so either folder can be pointed at.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("mmlu", "MMLU", "unreported", (
        _sub("mmlu", "mmlu", ("mmlu.json", "mmlu/mmlu.json"), "mmlu", "mc", "question",
             instruction_letters=ABCD, hub=HubSource("cais/mmlu", "test", config="all"), expected_rows=14042),
    ), paper_items=14042),
    Benchmark("mmlu_pro", "MMLU-Pro", "general", (
        _sub("mmlu_pro", "mmlu_pro", ("mmlu_pro.json", "mmlu_pro/test.json"), "mmlu_pro", "mc", "question",
             instruction_letters=AJ, extraction_letters="fixed", hub=HubSource("TIGER-Lab/MMLU-Pro", "test"),
             expected_rows=12032),
    ), paper_items=12032),
    Benchmark("gpqa_diamond", "GPQA-D", "general", (
        _sub("gpqa_diamond", "gpqa_diamond", ("gpqa_diamond.json", "gpqa/gpqa_diamond.json"), "gpqa", "mc", "Question",
             instruction_letters=ABCD, hub=HubSource("Idavidrein/gpqa", "train", config="gpqa_diamond", note="gated: accept the terms and log in"),
             expected_rows=198),
    ), paper_items=198),
    Benchmark("super_gpqa", "SuperGPQA", "general", (
        _sub("super_gpqa", "super_gpqa", ("super_gpqa.json", "super_gpqa/super_gpqa.json"), "super_gpqa", "mc", "question",
             instruction_letters=AJ, extraction_letters="fixed", option_style="right_paren",
             hub=HubSource("m-a-p/SuperGPQA", "train"), expected_rows=26529),
    ), paper_items=26529),
    Benchmark("scibench", "SciBench", "general", (
        _sub("scibench-physics", "scibench", ("scibench_physics.json", "physics/scibench_physics/scibench_physics.json"),
             "scibench", "scibench", "problem_text", prompt="scibench",
             hub=HubSource("xw27/scibench", "train", convert="scibench_physics"), expected_rows=227),
        _sub("scibench-chemistry", "scibench", ("scibench_chemistry.json", "chemistry/scibench_chemistry/scibench_chemistry.json"),
             "scibench", "scibench", "problem_text", prompt="scibench",
             hub=HubSource("xw27/scibench", "train", convert="scibench_chemistry"), expected_rows=266),
        _sub("scibench-math", "scibench", ("scibench_math.json", "scibench/scibench_math.json"),
             "scibench", "scibench", "problem_text", prompt="scibench",
             hub=HubSource("xw27/scibench", "train", convert="scibench_math"), expected_rows=147),
    ), paper_items=640),
    Benchmark("olympic_arena", "OlympicArena", "general", tuple(
        _sub(f"OlympicArena-{s}", "olympic_arena", (f"olympic_arena/{s}.json", f"olympic_arena_en_text/{s}.json"),
             "olympic_arena", "olympiad", "problem", prompt="olympiad",
             hub=HubSource("GAIR/OlympicArena", "val", config=s, convert="olympic_arena_text_en",
                           note="only the val split has public answers"))
        for s in OLYMPIC_ARENA_SUBJECTS
    )),
    Benchmark("chembench", "ChemBench", "specific", (
        _sub("ChemBench-multi-choise", "chembench", ("chembench_multi_choise.json", "chemistry/chembench/chemistry_multi_choise.json"),
             "chembench_mc", "mc", "examples.0.input", instruction_letters=AJ, extraction_letters="count",
             expected_rows=2544),
        _sub("ChemBench-str-match", "chembench", ("chembench_str_match.json", "chemistry/chembench/chemistry_str_match.json"),
             "chembench_str", "math", "examples.0.input", prompt="box", expected_rows=244),
    ), paper_items=2788),
    Benchmark("cs_bench", "CS-Bench", "specific", (
        _sub("cs-bench-assertion-questions", "cs_bench",
             ("cs_bench_assertion.json", "computer_science/cs_bench/cs_bench_assertion.json"),
             "cs_bench_assertion", "mc", "Question", instruction_letters="AB", expected_rows=442),
        _sub("cs-bench-multiple-choice-questions", "cs_bench",
             ("cs_bench_multiple_choice.json", "computer_science/cs_bench/cs_bench_multiple_choice.json"),
             "cs_bench_mc", "mc", "Question", instruction_letters=ABCD, expected_rows=1336),
    ), paper_items=1778),
    Benchmark("medqa", "MedQA", "specific", (
        _sub("medqa-us", "medqa", ("medqa_US.jsonl", "medicine/medqa_US/test.jsonl"), "medqa", "mc", "question",
             instruction_letters="ABCDE", expected_rows=1273),
    ), paper_items=1273),
    Benchmark("medmcqa", "MedMCQA", "specific", (
        _sub("medmcqa", "medmcqa", ("medmcqa.json", "medicine/medmcqa/medmcqa.json"), "medmcqa", "mc", "question",
             instruction_letters=ABCD, hub=HubSource("openlifescienceai/medmcqa", "validation"), expected_rows=4183),
    ), paper_items=4183),
    Benchmark("pubmedqa", "PubMedQA", "specific", (
        _sub("PubMedQA", "pubmedqa", ("pubmedqa.json", "medicine/pubmedqa/testset.json"), "pubmedqa", "mc", "question",
             instruction_letters="ABC", prompt="mc_pubmedqa", expected_rows=500),
    ), paper_items=500),
    Benchmark("piqa", "PIQA", "specific", (
        _sub("piqa", "piqa", ("piqa_valid.json", "physics/piqa/piqa_valid.json"), "piqa", "mc", "goal",
             instruction_letters="AB", hub=HubSource("ybisk/piqa", "validation"), expected_rows=1838),
    ), paper_items=1838),
    Benchmark("gsm8k", "GSM8K", "math", (
        _sub("gsm8k", "gsm8k", ("gsm8k.jsonl", "gsm8k/test.jsonl"), "gsm8k", "math", "question", prompt="box",
             hub=HubSource("openai/gsm8k", "test", config="main", convert="gsm8k_main"), expected_rows=1319),
    ), paper_items=1319),
    Benchmark("math", "MATH", "math", (
        _sub("math", "math", ("math.jsonl", "math/test.jsonl"), "math", "math", "problem", prompt="box",
             hub=HubSource("EleutherAI/hendrycks_math", "test",
                           config="algebra,counting_and_probability,geometry,intermediate_algebra,number_theory,prealgebra,precalculus",
                           convert="math_types"),
             expected_rows=5000),
    ), paper_items=5000),
    Benchmark("math500", "MATH500", "math", (
        _sub("math-500", "math500", ("math500.jsonl", "math500/test.jsonl"), "math500", "math", "problem", prompt="box",
             hub=HubSource("HuggingFaceH4/MATH-500", "test"), expected_rows=500),
    ), paper_items=500),
)  # fmt: skip

_BY_NAME = {b.name: b for b in BENCHMARKS}
_SUBTASKS = {s.key: s for b in BENCHMARKS for s in b.subtasks}

# The reference decontamination list (SPEC-pipeline §15), in its order. Entries that are also an
# evaluation subtask share its key, file names and ids; the others are pool-only.
_POOL_ONLY: dict[str, Subtask] = {
    "gpqa_main": _sub("gpqa_main", "gpqa_main", ("gpqa_main.json", "gpqa/gpqa_main.json"), "gpqa", "mc", "Question",
                      hub=HubSource("Idavidrein/gpqa", "train", config="gpqa_main"), expected_rows=448),
    **{
        key: _sub(key, "newton", (f"{name}.json",), "", "mc", "question")
        for key, name in (
            ("NEWTON-confident-questions", "newton_confident_questions"),
            ("NEWTON-explicit-questions-bool", "newton_explicit_questions_bool"),
            ("NEWTON-explicit-questions-mc", "newton_explicit_questions_mc"),
            ("NEWTON-implicit-questions", "newton_implicit_questions"),
        )
    },
}  # fmt: skip
POOL: tuple[str, ...] = (
    "mmlu", "mmlu_pro", "gpqa_diamond", "gpqa_main", "super_gpqa", "gsm8k", "math", "math-500",
    "ChemBench-multi-choise", "ChemBench-str-match", "cs-bench-assertion-questions",
    "cs-bench-multiple-choice-questions", "medqa-us", "medmcqa", "PubMedQA",
    "NEWTON-confident-questions", "NEWTON-explicit-questions-bool", "NEWTON-explicit-questions-mc",
    "NEWTON-implicit-questions", "piqa", "scibench-physics", "scibench-chemistry", "scibench-math",
)  # fmt: skip


def names(include_unreported: bool = True) -> list[str]:
    """Benchmark names in the paper's column order (MMLU first; it is evaluated but not reported)."""
    return [b.name for b in BENCHMARKS if include_unreported or b.reported]


def get(name: str) -> Benchmark:
    """The benchmark called ``name`` (also accepts a display name such as ``"GPQA-D"``)."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    for b in BENCHMARKS:
        if name.lower() in (b.display.lower(), b.name.replace("_", "-")):
            return b
    raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(names())}")


def subtask(key: str) -> Subtask:
    """An evaluation subtask or a pool-only entry by its reference config key."""
    if key in _SUBTASKS:
        return _SUBTASKS[key]
    if key in _POOL_ONLY:
        return _POOL_ONLY[key]
    raise KeyError(f"unknown subtask {key!r}; known: {', '.join(sorted(_SUBTASKS))}")


def subtasks(name: str) -> tuple[Subtask, ...]:
    return get(name).subtasks


def _missing(sub: Subtask, data_dir: str | Path, reason: str = "file not found") -> MissingBenchmark:
    return MissingBenchmark(
        key=sub.key, benchmark=sub.benchmark, expected_files=sub.files, data_dir=str(data_dir),
        hub=sub.hub.describe() if sub.hub else None, reason=reason,
    )  # fmt: skip


def _records(sub: Subtask, data_dir: str | Path, source: Source) -> tuple[list[dict], str] | None:
    """The subtask's raw records and where they came from, or ``None`` when unavailable."""
    if source in ("auto", "local"):
        path = sub.find_file(data_dir)
        if path is not None:
            return readers.read_records(path), str(path)
    if sub.hub is not None and (source == "hub" or (source == "auto" and hub_mod.hub_allowed())):
        log.info("fetching %s from the hub: %s", sub.key, sub.hub.describe())
        return hub_mod.fetch(sub.hub), f"hf://{sub.hub.path}"
    return None


def load_subtask(
    key: str, data_dir: str | Path, *, source: Source = "auto", limit: int | None = None
) -> list[BenchmarkItem]:
    """Items of one subtask (``"scibench-physics"``). Raises :class:`BenchmarkMissingError` when absent.

    Args:
        key: the reference config key (see ``[s.key for s in subtasks(name)]``).
        data_dir: the folder with the benchmark files.
        source: ``local`` files only; ``hub`` by Hugging Face name only; ``auto`` the local file,
            else the hub unless ``HF_HUB_OFFLINE=1``.
        limit: keep the first ``limit`` items (file order; ids do not change).
    """
    sub = subtask(key)
    if not sub.reader:
        raise KeyError(f"{key} is a decontamination-only entry; it has no evaluation reader")
    found = _records(sub, data_dir, source)
    if found is None:
        raise BenchmarkMissingError([_missing(sub, data_dir)])
    records, origin = found
    if limit is not None:
        records = records[:limit]
    return readers.to_items(records, sub, origin)


def load(
    name: str, data_dir: str | Path, *, source: Source = "auto", limit: int | None = None
) -> list[BenchmarkItem]:
    """All items of a benchmark, subtask after subtask; ``limit`` applies per subtask.

    Raises :class:`BenchmarkMissingError` listing every missing subtask file (with the expected
    paths and hub name) when any part of the benchmark is absent; use :func:`availability` first
    to evaluate only what is there.
    """
    bench = get(name)
    missing = [s for s in bench.subtasks if _records_available(s, data_dir, source) is False]
    if missing:
        raise BenchmarkMissingError([_missing(s, data_dir) for s in missing])
    items: list[BenchmarkItem] = []
    for sub in bench.subtasks:
        items.extend(load_subtask(sub.key, data_dir, source=source, limit=limit))
    return items


def _records_available(sub: Subtask, data_dir: str | Path, source: Source) -> bool:
    if source in ("auto", "local") and sub.find_file(data_dir) is not None:
        return True
    return sub.hub is not None and (source == "hub" or (source == "auto" and hub_mod.hub_allowed()))


def availability(
    data_dir: str | Path, names_: list[str] | None = None, *, source: Source = "local"
) -> tuple[list[str], list[MissingBenchmark]]:
    """``(present benchmark names, missing parts)`` for ``names_`` (default: all 15).

    A benchmark is present only when every subtask is; each missing subtask is listed with the
    file names it is looked up under and its hub name, so a report can say how to get it.
    """
    present, missing = [], []
    for name in names_ or names():
        bench = get(name)
        absent = [s for s in bench.subtasks if not _records_available(s, data_dir, source)]
        if absent:
            missing.extend(_missing(s, data_dir) for s in absent)
        else:
            present.append(bench.name)
    return present, missing


def decontamination_pool(data_dir: str | Path, *, include_olympic_arena: bool = False) -> DecontaminationPool:
    """The questions to decontaminate against: every present file of the 23-entry reference list.

    Returns the items ``{benchmark: list key, item_id: <key>-<index>, question}``, the missing
    entries (the reference crashed on them; here they are reported) and per-entry row counts.
    ``include_olympic_arena`` adds the OlympicArena subject files (used internally by the paper,
    not in its public list) when present. Only local files are read.
    """
    keys = list(POOL)
    if include_olympic_arena:
        keys += [s.key for s in get("olympic_arena").subtasks]
    items: list[PoolItem] = []
    missing: list[MissingBenchmark] = []
    counts: dict[str, int] = {}
    for key in keys:
        sub = subtask(key)
        path = sub.find_file(data_dir)
        if path is None:
            missing.append(_missing(sub, data_dir))
            continue
        records = readers.read_records(path)
        for i, record in enumerate(records):
            items.append(
                PoolItem(key, f"{key}-{i}", readers.question_text(record, sub.question_field, i, str(path)))
            )
        counts[key] = len(records)
    if missing:
        log.warning(
            "decontamination pool: %d of %d entries missing: %s",
            len(missing),
            len(keys),
            ", ".join(m.key for m in missing),
        )
    return DecontaminationPool(items=items, missing=missing, counts=counts)
