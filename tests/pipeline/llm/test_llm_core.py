"""The engine-independent parts of the LLM stage shape: configs, requests, provenance, the shard
logic (truncation/error policy, accounting), the response cache and prompt files."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline.config import ConfigError, from_dict
from pipeline.llm import (
    GEN_TYPE,
    Completion,
    EngineConfig,
    LLMRequest,
    LLMStageConfig,
    LLMTask,
    Reject,
    SamplingConfig,
    load_prompt,
    provenance,
)
from pipeline.llm.cache import CompletionCache
from pipeline.llm.prompts import PromptTemplate
from pipeline.llm.stage import EngineIdentity, completion_from_row, finish_shard, plan_requests, request_key


class EchoJudge(LLMTask):
    """A small fan-out task: two candidate judgements per row, kept when both say YES."""

    name = "echo_judge"
    version = "v3"
    id_column = "id"
    input_columns = ("id", "text")

    def build_requests(self, row):
        if row["text"] == "skip":
            return []
        return [
            [{"role": "user", "content": f"Is '{row['text']}' fine?"}],
            LLMRequest(
                ({"role": "user", "content": f"Really, is '{row['text']}' fine?"},), sampling={"seed": 7}
            ),
        ]

    def parse(self, row, completions):
        if not completions:
            return [{"id": row["id"], "verdict": "skipped"}]
        if all(c.text == "YES" for c in completions):
            return [{"id": row["id"], "verdict": "yes"}]
        if any(c.text == "" for c in completions):
            return []
        return Reject("judged_no", "a judge said no", completions[0].text)

    def output_schema(self, input_schema):
        return pa.schema([("id", pa.string()), ("verdict", pa.string())])


IDENTITY = EngineIdentity(model="m", engine="vllm", sampling=SamplingConfig(max_tokens=10))
INPUT_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string())])


def _completions(rows, answers):
    """key -> Completion, answering each planned request with answers[(unit_id, i)]."""
    plan = plan_requests(EchoJudge(), rows, IDENTITY, "s0")
    out, index = {}, {}
    for req in plan:
        i = index[req["unit_id"]] = index.get(req["unit_id"], -1) + 1
        text, reason = answers[(req["unit_id"], i)]
        out[req["key"]] = completion_from_row(
            {**req, "text": text, "finish_reason": reason, "prompt_tokens": 5, "completion_tokens": 1,
             "error": "boom" if reason == "error" else None},
            IDENTITY,
        )  # fmt: skip
    return out


def test_engine_config_from_yaml_mapping_and_validation():
    cfg = from_dict(
        LLMStageConfig,
        {"engine": {"kind": "openai", "model": "gpt", "base_url": "http://127.0.0.1:1/v1", "api_key_env": None},
         "sampling": {"max_tokens": 5, "guided": {"choice": ["YES", "NO"]}}},
    )  # fmt: skip
    assert cfg.engine.kind == "openai" and cfg.engine.api_key_env is None
    assert cfg.sampling.to_params() == {
        "temperature": 0.0, "top_p": 0.9, "max_tokens": 5, "structured_outputs": {"choice": ["YES", "NO"]}
    }  # fmt: skip
    assert SamplingConfig().max_tokens == 16000 and EngineConfig().enable_prefix_caching
    with pytest.raises(ConfigError, match="base_url"):
        from_dict(EngineConfig, {"kind": "openai"})
    with pytest.raises(ConfigError, match="allowed values"):
        from_dict(EngineConfig, {"kind": "hf"})
    with pytest.raises(ConfigError, match="exactly one"):
        from_dict(SamplingConfig, {"guided": {"choice": ["a"], "regex": "b"}})
    with pytest.raises(ConfigError, match="engine_kwargs"):
        EngineConfig(engine_kwargs={"tensor_parallel_size": 2})
    with pytest.raises(ConfigError, match="max_tokens"):
        SamplingConfig(max_tokens=0)


def test_requests_are_normalised_and_keys_depend_on_what_matters():
    task = EchoJudge()
    reqs = task.requests({"id": "a", "text": "x"})
    assert [r.prompt for r in reqs] == ["echo_judge@v3", "echo_judge@v3"] and reqs[1].sampling == {"seed": 7}
    plan = plan_requests(task, [{"id": "a", "text": "x"}, {"id": "a", "text": "x"}], IDENTITY, "s0")
    assert len(plan) == 2, "a unit seen twice in a shard is planned once"
    assert json.loads(plan[1]["sampling_json"])["seed"] == 7 and "seed" not in json.loads(
        plan[0]["sampling_json"]
    )
    base = request_key("m", "p@v1", "[]", "{}")
    assert len({base, request_key("m2", "p@v1", "[]", "{}"), request_key("m", "p@v2", "[]", "{}"),
                request_key("m", "p@v1", "[1]", "{}"), request_key("m", "p@v1", "[]", '{"seed": 1}')}) == 5  # fmt: skip
    with pytest.raises(ValueError, match="role"):
        LLMRequest(({"text": "hi"},))


def test_provenance_sums_tokens_and_keeps_the_worst_finish_reason():
    comps = [
        Completion("a", "stop", 10, 2, "m", "vllm", "p@v1", '{"max_tokens": 4}'),
        Completion("b", "length", 11, 4, "m", "vllm", "p@v1", '{"max_tokens": 4}'),
    ]
    gen = provenance(comps)
    assert gen == {"model": "m", "engine": "vllm", "prompt": "p@v1", "sampling": '{"max_tokens": 4}',
                   "prompt_tokens": 21, "completion_tokens": 6, "finish_reason": "length", "n_requests": 2}  # fmt: skip
    pa.array([gen], type=GEN_TYPE)  # fits the column type
    with pytest.raises(ValueError):
        provenance([])


def test_finish_shard_policies_and_accounting():
    rows = [{"id": u, "text": u} for u in ("ok", "no", "cut", "err", "empty", "skip")]
    answers = {
        ("ok", 0): ("YES", "stop"), ("ok", 1): ("YES", "stop"),
        ("no", 0): ("YES", "stop"), ("no", 1): ("NO", "stop"),
        ("cut", 0): ("YE", "length"), ("cut", 1): ("YES", "stop"),
        ("err", 0): ("", "error"), ("err", 1): ("YES", "stop"),
        ("empty", 0): ("", "stop"), ("empty", 1): ("YES", "stop"),
    }  # fmt: skip
    result, data, rejects = finish_shard(
        EchoJudge(),
        "judge",
        "s0",
        rows,
        INPUT_SCHEMA,
        _completions(rows, answers),
        IDENTITY,
        source="in.parquet",
    )
    assert result.in_rows == 6 and result.passed == 2 and result.out_rows == 2
    assert result.rejected == {"judged_no": 1, "truncated": 1, "engine_error": 1, "no_output": 1}
    assert result.counters["requests"] == 10 and result.counters["finish_length"] == 1
    out = {r["id"]: r for r in data.to_pylist()}
    assert out["ok"]["gen"]["n_requests"] == 2 and out["ok"]["gen"]["prompt_tokens"] == 10
    assert out["skip"]["verdict"] == "skipped" and out["skip"]["gen"] is None
    by_reason = {r["reason"]: r for r in rejects.to_pylist()}
    assert by_reason["truncated"]["raw"] == "YE" and "max_tokens" in by_reason["truncated"]["detail"]
    assert by_reason["engine_error"]["detail"] == "boom" and by_reason["judged_no"]["source"] == "in.parquet"
    assert data.schema.field("gen").type == GEN_TYPE


def test_finish_shard_can_hand_truncated_outputs_to_the_parser_and_fails_on_missing_completions():
    task = EchoJudge()
    task.on_truncated = "parse"
    rows = [{"id": "cut", "text": "cut"}]
    comps = _completions(rows, {("cut", 0): ("YES", "length"), ("cut", 1): ("YES", "stop")})
    result, data, _ = finish_shard(task, "judge", "s0", rows, INPUT_SCHEMA, comps, IDENTITY)
    assert result.passed == 1 and data.to_pylist()[0]["gen"]["finish_reason"] == "length"
    comps.pop(next(iter(comps)))
    with pytest.raises(KeyError, match="no completion"):
        finish_shard(task, "judge", "s0", rows, INPUT_SCHEMA, comps, IDENTITY)


def test_finish_shard_checks_input_columns():
    with pytest.raises(ValueError, match="missing column"):
        finish_shard(EchoJudge(), "judge", "s0", [], pa.schema([("id", pa.string())]), {}, IDENTITY)


def _row(key, shard, reason="stop", text="t"):
    return {"key": key, "shard": shard, "unit_id": "u", "prompt_id": "p@v1", "sampling_json": "{}", "text": text,
            "finish_reason": reason, "prompt_tokens": 1, "completion_tokens": 1, "error": None}  # fmt: skip


def test_cache_appends_parts_filters_by_shard_and_retries_errors(tmp_path):
    cache = CompletionCache.for_stage(str(tmp_path / "run"), "judge", "m", flush_rows=2)
    assert cache.keys() == set() and cache.lookup() == {}
    cache.add([_row("k1", "a")])
    assert cache.keys() == set(), "below flush_rows nothing is written yet"
    cache.add([_row("k2", "b"), _row("k3", "a", "error", "")])
    assert cache.keys() == {"k1", "k2"}, "error completions are retried on the next run"
    assert set(cache.lookup(["a"])) == {"k1", "k3"}
    cache.add([_row("k3", "a", "stop", "fixed")])
    cache.flush()
    reread = CompletionCache.for_stage(str(tmp_path / "run"), "judge", "m")
    assert reread.lookup(["a"])["k3"]["text"] == "fixed" and reread.keys(["a"]) == {"k1", "k3"}
    parts = sorted(p.parent.name for p in (tmp_path / "run" / "_llm_cache" / "judge").rglob("part-*.parquet"))
    assert parts == ["a", "a", "b"], "one folder per shard, one part per shard per flush"
    reread.clear()
    assert reread.keys() == set()


def test_prompt_files_load_and_render(tmp_path):
    template = PromptTemplate("t", "v1", "Solve `<PROBLEM>` using <HINT>; keep <the format>.\n")
    assert template.placeholders == {"PROBLEM", "HINT"}
    assert template.render(PROBLEM="x{1}\\y", HINT="h") == "Solve `x{1}\\y` using h; keep <the format>.\n"
    assert template.messages(None, PROBLEM="p", HINT="h")[0]["role"] == "user"
    assert [m["role"] for m in template.messages(PROBLEM="p", HINT="h")] == ["system", "user"]
    with pytest.raises(KeyError, match="HINT"):
        template.render(PROBLEM="p")
    assert load_prompt("pipeline.extract.prompts", "qa_extraction_math_high", "v1").prompt_id == (
        "qa_extraction_math_high@v1"
    )
    with pytest.raises(FileNotFoundError, match="available"):
        load_prompt("pipeline.extract.prompts", "qa_extraction_math_high", "v999")
