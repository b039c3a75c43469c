"""The benchmark registry on the real benchmark files and on small files in the missing benchmarks' schemas."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.benchmarks import (
    BenchmarkFormatError,
    BenchmarkMissingError,
    hub,
    readers,
    registry,
)

PAPER_ORDER = [
    "mmlu", "mmlu_pro", "gpqa_diamond", "super_gpqa", "scibench", "olympic_arena", "chembench", "cs_bench",
    "medqa", "medmcqa", "pubmedqa", "piqa", "gsm8k", "math", "math500",
]  # fmt: skip
ABSENT_HERE = {"mmlu", "mmlu_pro", "super_gpqa", "olympic_arena", "math"}


def test_fifteen_benchmarks_with_categories_and_composites():
    assert registry.names() == PAPER_ORDER
    reported = registry.names(include_unreported=False)
    assert len(reported) == 14 and "mmlu" not in reported
    categories = Counter(registry.get(n).category for n in reported)
    assert categories == {"general": 5, "specific": 6, "math": 3}
    assert [s.key for s in registry.get("scibench").subtasks] == [
        "scibench-physics",
        "scibench-chemistry",
        "scibench-math",
    ]
    assert len(registry.get("chembench").subtasks) == 2 and len(registry.get("cs_bench").subtasks) == 2
    assert registry.get("GPQA-D").name == "gpqa_diamond"
    with pytest.raises(KeyError, match="unknown benchmark"):
        registry.get("nope")


def test_real_files_load_with_reference_counts(benchmarks_dir: Path):
    present, missing = registry.availability(benchmarks_dir)
    assert set(present) == set(PAPER_ORDER) - ABSENT_HERE
    assert {m.benchmark for m in missing} == ABSENT_HERE
    for name in present:
        items = registry.load(name, benchmarks_dir)
        by_sub = Counter(i.subtask for i in items)
        for sub in registry.get(name).subtasks:
            assert by_sub[sub.key] == sub.expected_rows, sub.key
        assert len({i.item_id for i in items}) == len(items)
        for item in items:
            assert item.question.strip(), item.item_id
            if item.qtype == "mc":
                assert len(item.options) >= 2 and item.gold_index is not None
                assert 0 <= item.gold_index < len(item.options), item.item_id


def test_reference_quirks_are_kept(benchmarks_dir: Path):
    gpqa = registry.load("gpqa_diamond", benchmarks_dir)
    assert {i.gold for i in gpqa} == {"D"}  # the reference seeds 42 before every item: gold always D
    raw = readers.read_records(benchmarks_dir / "gpqa_diamond.json")[0]
    assert gpqa[0].options == (
        raw["Incorrect Answer 2"].strip(), raw["Incorrect Answer 1"].strip(), raw["Incorrect Answer 3"].strip(),
        raw["Correct Answer"].strip(),
    )  # fmt: skip

    chem = [i for i in registry.load("chembench", benchmarks_dir) if i.subtask == "ChemBench-multi-choise"]
    several = [i for i in chem if len(i.meta["all_correct"]) > 1]
    assert len(several) == 394  # SPEC-eval §1.1
    assert all(i.gold == i.meta["all_correct"][0] for i in several)
    assert max(len(i.options) for i in chem) == 16

    math500 = registry.load("math500", benchmarks_dir)
    assert math500[0].gold == "\\left( 3, \\frac{\\pi}{2} \\right)"  # raw, not normalised
    gsm = registry.load("gsm8k", benchmarks_dir)
    assert all("," not in i.gold for i in gsm)
    assert gsm[0].solution.endswith("So the answer is $\\boxed{18}$.")

    sci = registry.load("scibench", benchmarks_dir)
    scaled = [i for i in sci if i.meta["unit_exponent"]]
    assert scaled and all(i.meta["unit_prob"] != i.meta["unit"] for i in scaled)
    example = next(i for i in scaled if i.meta["unit"].startswith("$10^{11}"))
    assert example.meta["unit_exponent"] == 11 and example.meta["unit_prob"] == "\\mathrm{~J}$"

    pubmed = registry.load("pubmedqa", benchmarks_dir)
    assert pubmed[0].options == ("Yes", "No", "Maybe") and pubmed[0].meta["contexts"]


def test_decontamination_pool_matches_reference_list(benchmarks_dir: Path):
    pool = registry.decontamination_pool(benchmarks_dir)
    assert len(registry.POOL) == 23
    assert len(pool.items) == 17908  # the 15 present files (SPEC-pipeline §15)
    assert sorted(m.key for m in pool.missing) == sorted(
        ["gpqa_main", "math", "mmlu", "mmlu_pro", "NEWTON-explicit-questions-bool", "NEWTON-explicit-questions-mc",
         "NEWTON-implicit-questions", "super_gpqa"]
    )  # fmt: skip
    assert all(m.message().startswith(m.key) and str(benchmarks_dir) in m.message() for m in pool.missing)
    assert pool.counts["NEWTON-confident-questions"] == 2891
    table = pool.to_arrow()
    assert table.column_names == ["benchmark", "item_id", "question"] and table.num_rows == 17908
    assert len(set(table.column("item_id").to_pylist())) == 17908
    # The same id means the same question in evaluation and in decontamination.
    by_id = {i.item_id: i.question for i in pool.items}
    for name in ("gpqa_diamond", "chembench", "scibench", "piqa"):
        for item in registry.load(name, benchmarks_dir):
            assert by_id[item.item_id] == item.question


def _write(path: Path, records: list[dict], jsonl: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records)
    path.write_text(text)


def test_missing_benchmarks_load_from_files_in_their_schema(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchmarkMissingError) as err:
        registry.load("mmlu_pro", tmp_path)
    assert "mmlu_pro.json" in str(err.value) and "TIGER-Lab/MMLU-Pro" in str(err.value)

    _write(
        tmp_path / "mmlu.json",
        [{"question": "2+2?", "choices": ["1", "2", "3", "4"], "answer": 3, "subject": "math"}],
    )
    _write(tmp_path / "mmlu_pro" / "test.json", [
        {"question_id": 70, "question": "Q?", "options": [f"o{k}" for k in range(10)], "answer": "I", "answer_index": 8,
         "cot_content": "", "category": "physics", "src": "x"},
    ])  # fmt: skip
    _write(tmp_path / "super_gpqa.json", [
        {"uuid": "u1", "question": "Q?", "options": ["a", "b", "c"], "answer": "b", "answer_letter": "B",
         "discipline": "Science", "field": "Physics", "subfield": "Optics", "difficulty": "hard", "is_calculation": True},
    ])  # fmt: skip
    _write(tmp_path / "math.jsonl", [
        {"problem": "What is $1+1$?", "solution": "So $1+1=\\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
    ], jsonl=True)  # fmt: skip
    for subject in registry.OLYMPIC_ARENA_SUBJECTS:
        _write(tmp_path / "olympic_arena" / f"{subject}.json", [
            {"id": f"{subject}_1", "problem": "Find x.", "prompt": "Solve: find x.", "answer": ["3"], "answer_type": "NV",
             "unit": None, "type_sequence": None, "subject": subject, "language": "EN", "modality": "text-only"},
        ])  # fmt: skip

    assert registry.load("mmlu", tmp_path)[0].gold == "D"
    pro = registry.load("mmlu_pro", tmp_path)[0]
    assert pro.gold == "I" and len(pro.options) == 10 and pro.item_id == "mmlu_pro-0"
    assert registry.load("super_gpqa", tmp_path)[0].gold == "B"
    math = registry.load("math", tmp_path)[0]
    assert math.gold == "2" and math.solution.startswith("So")
    olympic = registry.load("olympic_arena", tmp_path)
    assert len(olympic) == 6 and olympic[0].meta["answer"] == ["3"] and olympic[0].qtype == "olympiad"

    present, missing = registry.availability(tmp_path, ["mmlu", "math", "gsm8k"])
    assert present == ["mmlu", "math"] and [m.key for m in missing] == ["gsm8k"]
    pool = registry.decontamination_pool(tmp_path, include_olympic_arena=True)
    assert {i.benchmark for i in pool.items} == {"mmlu", "mmlu_pro", "super_gpqa", "math"} | {
        f"OlympicArena-{s}" for s in registry.OLYMPIC_ARENA_SUBJECTS
    }
    assert len(pool.missing) == 19


def test_bad_records_name_file_record_and_field(tmp_path: Path):
    _write(
        tmp_path / "piqa_valid.json",
        [{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}, {"goal": "g", "sol1": "a"}],
    )
    with pytest.raises(BenchmarkFormatError, match=r"piqa_valid.json: record 1: missing field 'sol2'"):
        registry.load("piqa", tmp_path)
    _write(
        tmp_path / "medmcqa.json",
        [{"question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 7}],
    )
    with pytest.raises(BenchmarkFormatError, match="cop=7 is out of range"):
        registry.load("medmcqa", tmp_path)
    (tmp_path / "gsm8k.jsonl").write_text('{"question": "q", "answer": "1"}\n{not json\n')
    with pytest.raises(BenchmarkFormatError, match=r"gsm8k.jsonl:2: not valid JSON"):
        registry.load("gsm8k", tmp_path)


def test_hub_rows_are_converted_to_the_reference_schema(tmp_path: Path, monkeypatch):
    # The hub is unreachable here: datasets.load_dataset is replaced by rows in the hub's schema;
    # what is tested is the conversion and that hub items equal file items.
    hub_rows = {
        ("openai/gsm8k", "main"): [{"question": "Q?", "answer": "Add 1,000 and 1.\n#### 1,001"}],
        ("xw27/scibench", None): [
            {"problem_text": "p", "answer_number": "1.5", "unit": "m", "source": "fund"},
            {"problem_text": "c", "answer_number": "2", "unit": "", "source": "calc"},
        ],
    }

    class FakeDataset:
        def __init__(self, rows):
            self.rows = rows

        def to_list(self):
            return list(self.rows)

    def fake_load_dataset(path, config=None, split=None):
        return FakeDataset(hub_rows[(path, config)])

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    gsm = registry.load("gsm8k", tmp_path, source="hub")
    assert gsm[0].gold == "1001" and gsm[0].solution.startswith("Add 1,000 and 1.")
    physics = registry.load_subtask("scibench-physics", tmp_path, source="hub")
    assert [i.gold for i in physics] == ["1.5"]  # the calculus book is not part of SciBench here
    assert hub.gsm8k_main([{"question": "q", "answer": "x\n#### 7"}])[0]["answer"] == "7"

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchmarkMissingError):
        registry.load("gsm8k", tmp_path)  # auto + offline: reported missing, no hub call
