"""Mixture: source normalisation, the three selection rules, difficulty grading tasks."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.llm import Completion
from pipeline.mixture.build import NOT_SELECTED, TOO_LONG, select_source
from pipeline.mixture.config import GradeConfig, MixtureConfig, MixtureSource, StudentAnswerConfig
from pipeline.mixture.difficulty import GradeTask, StudentAnswerTask, reference_for
from pipeline.mixture.select import mean_valid_score, select_by_difficulty, select_by_length, select_random
from pipeline.mixture.sources import MISSING_FIELD, normalize, read_source_rows


def test_select_random_is_seeded_and_order_independent():
    ids = [f"id{i}" for i in range(100)]
    chosen = [ids[i] for i in select_random(ids, 10, seed=1)]
    shuffled = ids[::-1]
    assert sorted(shuffled[i] for i in select_random(shuffled, 10, seed=1)) == sorted(chosen)
    assert select_random(ids, 10, seed=2) != select_random(ids, 10, seed=1)
    assert len(select_random(ids, None, seed=1)) == 100


def test_select_by_length_drops_overlong_then_takes_longest():
    ids = ["a", "b", "c", "d", "e"]
    lengths = [50, 20_000, 300, 300, 10]
    assert select_by_length(ids, lengths, 2, max_tokens=10_000) == [2, 3]
    assert select_by_length(ids, lengths, 3, max_tokens=10_000) == [0, 2, 3]


def test_difficulty_mean_and_window():
    assert mean_valid_score([10, -1, 4]) == 7.0
    assert mean_valid_score([-1, -1]) == 0.0  # no valid grade: 0, as the reference
    means = [0.0, 1.0, 1.5, 8.9, 9.0, 5.0]
    assert select_by_difficulty(list("abcdef"), means, 1, 9) == [2, 3, 5]  # strict on both ends
    assert len(select_by_difficulty(list("abcdef"), means, 1, 9, k=2)) == 2


def test_normalize_takes_first_of_list_answers_and_rejects_missing(tmp_path):
    path = tmp_path / "nr.jsonl"
    records = [
        {"question": "Why do ions conduct?", "responses": ["Because charges move.", "alt"], "reference_answer": "mobile charges"},
        {"question": "", "responses": ["x"]},
        {"question": "What is pH?", "responses": []},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in records))
    source = MixtureSource(name="nr", path=str(path), answer_field="responses", subject="general")
    rows = read_source_rows(source, str(tmp_path / "run"))
    data, _rejects, result = normalize(source, rows)
    assert data.to_pylist()[0]["answer"] == "Because charges move."
    assert data.to_pylist()[0]["subject"] == "general" and data.to_pylist()[0]["source"] == "nr"
    assert (result.in_rows, result.passed, result.rejected) == (3, 1, {MISSING_FIELD: 2})
    assert normalize(source, rows)[0]["qa_id"].to_pylist() == data["qa_id"].to_pylist()  # stable ids


def table(n):
    return pa.Table.from_pylist(
        [
            {
                "qa_id": f"q{i}",
                "question": f"Q{i}",
                "answer": " ".join(["word"] * (i * 10)),
                "difficulty_mean": float(i),
            }
            for i in range(n)
        ]
    )


def test_select_source_accounts_for_every_row(qwen3_tokenizer):
    cfg = MixtureConfig(length_max_tokens=60)
    data, _rejects, result = select_source(table(10), MixtureSource(name="s", path="x", selection="length", k=3), cfg,
                                          qwen3_tokenizer)  # fmt: skip
    assert data["qa_id"].to_pylist() == ["q4", "q5", "q6"]  # q7..q9 exceed 60 tokens
    assert result.rejected == {TOO_LONG: 3, NOT_SELECTED: 4}
    assert data["selection"].to_pylist() == ["length"] * 3 and data["length"].to_pylist() == [40, 50, 60]
    data, _rejects, result = select_source(
        table(10), MixtureSource(name="s", path="x", selection="difficulty"), cfg
    )
    assert data["qa_id"].to_pylist() == [f"q{i}" for i in range(2, 9)]
    assert result.in_rows == result.passed + sum(result.rejected.values()) == 10
    data, _, _ = select_source(table(10), MixtureSource(name="s", path="x", selection="random", k=4), cfg)
    assert data.num_rows == 4


def test_student_and_grade_tasks():
    student = StudentAnswerTask(StudentAnswerConfig(), samples=3, sources={"nr"})
    unit = {
        "qa_id": "q",
        "question": "What is 2+2?",
        "source": "nr",
        "answer": "2+2 = \\boxed{4}",
        "reference_answer": None,
    }
    requests = student.requests(unit)
    assert [r.sampling for r in requests] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert student.requests({**unit, "source": "textbook"}) == []
    done = [Completion(text=f"<think>x</think>answer {i}", finish_reason="stop") for i in range(3)]
    row = student.parse(unit, done)[0]
    assert row["student_answers"] == ["answer 0", "answer 1", "answer 2"]
    grade = GradeTask(GradeConfig())
    assert reference_for(unit) == "4"
    assert "`4`" in grade.requests(row)[0].messages[1]["content"]
    graded = grade.parse(
        row, [Completion(text=t, finish_reason="stop") for t in ("Score: 8", "Score: 2", "no idea")]
    )[0]
    assert graded["difficulty_scores"] == [8, 2, -1] and graded["difficulty_mean"] == 5.0


def test_config_rejects_duplicate_sources():
    from pipeline.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="unique"):
        from_dict(MixtureConfig, {"sources": [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}]})
