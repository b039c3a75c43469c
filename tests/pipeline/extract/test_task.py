"""The extraction task on literal rows: prompts, units, requests, parsing into QA records."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, from_dict
from pipeline.extract import QA_SCHEMA, ExtractQAConfig, ExtractQATask
from pipeline.extract.task import load_extraction_prompts
from pipeline.llm import Completion, Reject
from pipeline.llm.prompts import SYSTEM_PROMPT
from pipeline.schema import SUBJECTS

CHUNK = {
    "chunk_id": "c1",
    "doc_id": "d1",
    "subject": "chemistry",
    "text": "Le Chatelier {x} \\n <b>",
    "title": "t",
}


def _done(text: str, reason: str = "stop") -> list[Completion]:
    return [Completion(text, reason, 100, 20, "m", "vllm", "qa_extraction_chemistry_low@v1", "{}")]


def test_fourteen_versioned_prompts_with_the_output_contract():
    prompts = load_extraction_prompts("v1")
    assert len(prompts) == 14 and {s for s, _ in prompts} == set(SUBJECTS)
    assert len({p.text for p in prompts.values()}) == 14, "every subject × standard has its own prompt"
    for (subject, standard), prompt in prompts.items():
        assert prompt.placeholders == {"EXAMPLE"}, prompt.prompt_id
        assert "`<EXAMPLE>`" in prompt.text and "[NO QA]" in prompt.text
        assert "Question:" in prompt.text and "Answer:" in prompt.text
        assert prompt.prompt_id == f"qa_extraction_{subject}_{standard}@v1"


def test_units_requests_and_placeholder_filled_verbatim():
    task = ExtractQATask(ExtractQAConfig())
    units = task.expand(CHUNK)
    assert [task.unit_id(u) for u in units] == ["c1:high", "c1:low"]
    (request,) = task.requests(units[1])
    assert request.prompt == "qa_extraction_chemistry_low@v1"
    assert request.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "`Le Chatelier {x} \\n <b>`" in request.messages[1]["content"]
    no_system = ExtractQATask(from_dict(ExtractQAConfig, {"system_prompt": False, "standards": ["high"]}))
    assert [m["role"] for m in no_system.requests(no_system.expand(CHUNK)[0])[0].messages] == ["user"]


def test_parse_pairs_into_qa_records():
    task = ExtractQATask(ExtractQAConfig())
    unit = task.expand(CHUNK)[1]
    rows = task.parse(
        unit, _done("Question: Why does K shift?\nAnswer: Heat.\n\nQ: Define K.\nA: The ratio.")
    )
    assert [(r["qa_index"], r["question"], r["answer"]) for r in rows] == [
        (0, "Why does K shift?", "Heat."),
        (1, "Define K.", "The ratio."),
    ]
    assert rows[0]["qa_id"] != rows[1]["qa_id"] and rows[0]["chunk_id"] == "c1" and rows[0]["doc_id"] == "d1"
    assert (
        rows[0]["standard"] == "low"
        and rows[0]["parser"] == "robust"
        and rows[0]["raw_output"].startswith("Q")
    )
    assert set(rows[0]) | {"gen"} == set(QA_SCHEMA.names)
    again = task.parse(unit, _done("Question: Why does K shift?\nAnswer: Heat."))
    assert again[0]["qa_id"] == rows[0]["qa_id"], "ids are content hashes: stable across reruns"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[NO QA]", "no_qa"),
        ("", "empty_output"),
        ("Nothing here.", "malformed"),
        ("Question: only?", "no_answer"),
    ],
)
def test_parse_rejects_with_reason_and_raw(text, reason):
    task = ExtractQATask(ExtractQAConfig())
    result = task.parse(task.expand(CHUNK)[0], _done(text))
    assert isinstance(result, Reject) and result.reason == reason and result.raw == text


def test_subjects_are_routed_and_unknown_ones_rejected_without_a_model_call():
    task = ExtractQATask(from_dict(ExtractQAConfig, {"subjects": ["physics"]}))
    unit = task.expand(CHUNK)[0]
    assert task.requests(unit) == []
    assert task.parse(unit, []).reason == "subject_skipped"
    stray = ExtractQATask(ExtractQAConfig()).expand({**CHUNK, "subject": "astrology"})[0]
    assert ExtractQATask(ExtractQAConfig()).requests(stray) == []
    assert ExtractQATask(ExtractQAConfig()).parse(stray, []).reason == "unknown_subject"


def test_reference_mode_reproduces_the_reference_and_parses_truncated_output():
    task = ExtractQATask(from_dict(ExtractQAConfig, {"parser": "reference", "keep_raw_output": False}))
    assert task.on_truncated == "parse" and ExtractQATask(ExtractQAConfig()).on_truncated == "reject"
    unit = task.expand(CHUNK)[0]
    rows = task.parse(unit, _done("**Question:** a?\n**Answer:** b", "length"))
    assert [(r["question"], r["answer"], r["parser"], r["raw_output"]) for r in rows] == [
        ("a?", "b", "reference", None)
    ]
    assert task.parse(unit, _done("Question 1: a?\nAnswer 1: b")).reason == "malformed"
    assert task.parse(unit, _done("[NO QA]")).reason == "no_qa"


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown subject"):
        from_dict(ExtractQAConfig, {"subjects": ["astrology"]})
    with pytest.raises(ConfigError, match="allowed values"):
        from_dict(ExtractQAConfig, {"standards": ["medium"]})
    with pytest.raises(ConfigError, match="twice"):
        from_dict(ExtractQAConfig, {"standards": ["low", "low"]})
    with pytest.raises(ConfigError, match="allowed values"):
        from_dict(ExtractQAConfig, {"parser": "regex"})
