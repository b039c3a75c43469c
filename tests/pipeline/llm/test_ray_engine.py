"""Engines: the request/response mapping (pure), and the ``openai`` engine through Ray Data LLM's
HTTP processor against a real OpenAI-compatible server (vLLM's, on 127.0.0.1) serving the tiny
model. The ``vllm`` engine runs for real in ``tests/ray_jobs/test_extract_qa.py``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pyarrow as pa
import pytest

from pipeline.config import ConfigError
from pipeline.llm import EngineConfig, GuidedDecodingConfig, SamplingConfig
from pipeline.llm.ray_engine import (
    _vllm_completion_row,
    openai_headers,
    openai_payload,
    parse_openai_response,
    vllm_engine_kwargs,
)
from pipeline.llm.stage import COMPLETION_SCHEMA, REQUEST_SCHEMA

CARRY = {"key": "k", "shard": "s", "unit_id": "u", "prompt_id": "p@v1", "sampling_json": '{"max_tokens": 4}'}


@pytest.mark.parametrize(
    ("tokens", "n_in", "error", "context", "expected"),
    [
        ([5, 6, 7, 8], 10, "", None, "length"),  # reached max_tokens
        ([5, 6, 99], 10, "", None, "stop"),  # ended with EOS
        ([5, 6, 7, 99], 10, "", None, "stop"),  # EOS exactly at the limit
        ([5, 6], 10, "", None, "stop"),  # stop string / short answer
        ([5, 6], 30, "", 32, "length"),  # filled the context
        ([], 0, "ValueError: prompt too long", None, "error"),
    ],
)
def test_vllm_finish_reason_is_derived_from_tokens(tokens, n_in, error, context, expected):
    row = {**CARRY, "generated_text": " text ", "generated_tokens": tokens, "num_generated_tokens": len(tokens),
           "num_input_tokens": n_in, "__inference_error__": error}  # fmt: skip
    out = _vllm_completion_row(row, context_length=context, eos_ids=frozenset({99}))
    assert out["finish_reason"] == expected
    assert set(out) == set(COMPLETION_SCHEMA.names)
    assert out["text"] == ("" if error else "text") and out["error"] == (error or None)


def test_openai_response_parsing():
    ok = {"choices": [{"message": {"content": " hi "}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 7, "completion_tokens": 2}}  # fmt: skip
    assert parse_openai_response(ok) == {
        "text": "hi", "finish_reason": "stop", "prompt_tokens": 7, "completion_tokens": 2, "error": None
    }  # fmt: skip
    cut = {"choices": [{"message": {"content": "h"}, "finish_reason": "length"}], "usage": {}}
    assert parse_openai_response(cut)["finish_reason"] == "length"
    err = parse_openai_response({"object": "error", "message": "maximum context length is 2048"})
    assert err["finish_reason"] == "error" and "2048" in err["error"]
    assert parse_openai_response({"error": {"message": "bad key"}})["error"].endswith("bad key")
    assert parse_openai_response(None)["finish_reason"] == "error"
    assert parse_openai_response(json.dumps(ok))["text"] == "hi"
    assert parse_openai_response({"status": 200, "body": json.dumps(ok)})["completion_tokens"] == 2
    raw = parse_openai_response({"status": 401, "body": '{"error": "Unauthorized"}'})
    assert raw["finish_reason"] == "error" and "Unauthorized" in raw["error"]
    assert "HTTP 502" in parse_openai_response({"status": 502, "body": "<html>bad gateway</html>"})["error"]


def test_openai_payload_headers_and_vllm_kwargs(monkeypatch):
    engine = EngineConfig(kind="openai", model="tiny", base_url="http://127.0.0.1:1/v1", api_key_env="MS_TEST_KEY",
                          chat_template_kwargs={"enable_thinking": False})  # fmt: skip
    params = SamplingConfig(max_tokens=8, seed=3).to_params()
    payload = openai_payload(engine, [{"role": "user", "content": "x"}], params)
    assert payload == {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "temperature": 0.0,
                       "top_p": 0.9, "max_tokens": 8, "seed": 3, "chat_template_kwargs": {"enable_thinking": False}}  # fmt: skip
    monkeypatch.delenv("MS_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$MS_TEST_KEY is not set"):
        openai_headers(engine)
    monkeypatch.setenv("MS_TEST_KEY", "sk-test")
    assert openai_headers(engine) == {"Authorization": "Bearer sk-test"}
    kwargs = vllm_engine_kwargs(
        EngineConfig(tensor_parallel_size=4, max_model_len=8192, engine_kwargs={"seed": 1}), True
    )
    assert kwargs["tensor_parallel_size"] == 4 and kwargs["enable_prefix_caching"] is True
    assert kwargs["max_model_len"] == 8192 and kwargs["gpu_memory_utilization"] == 0.9 and kwargs["seed"] == 1
    assert "gpu_memory_utilization" not in vllm_engine_kwargs(EngineConfig(), False)


# -- a real OpenAI-compatible server ---------------------------------------------------------------
API_KEY = "sk-local-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def openai_server(tiny_model_dir, tmp_path_factory):
    """vLLM's OpenAI API server on 127.0.0.1 serving the tiny model as ``tiny`` (needs a key)."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model_dir),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY,
           "--max-model-len", "1024", "--max-num-seqs", "8", "--dtype", "bfloat16", "--enforce-eager"]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                req = urllib.request.Request(
                    f"{base_url}/models", headers={"Authorization": f"Bearer {API_KEY}"}
                )
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vLLM server not ready in 600 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _request_rows(sampling: SamplingConfig, prompts: list[str]) -> list[dict]:
    return [
        {"key": f"k{i}", "shard": "s", "unit_id": f"u{i}", "prompt_id": "test@v1",
         "messages_json": json.dumps([{"role": "user", "content": p}]), "sampling_json": json.dumps(sampling.to_params())}
        for i, p in enumerate(prompts)
    ]  # fmt: skip


@pytest.mark.slow
def test_openai_engine_through_ray_data_llm_http_processor(openai_server, ray_cluster, monkeypatch):
    import ray

    from pipeline.llm.ray_engine import generate

    monkeypatch.setenv("MS_TEST_KEY", API_KEY)
    engine = EngineConfig(kind="openai", model="tiny", base_url=openai_server, api_key_env="MS_TEST_KEY",
                          concurrency=2, batch_size=2, max_retries=1, timeout_s=120)  # fmt: skip
    free = SamplingConfig(max_tokens=8)
    guided = SamplingConfig(
        max_tokens=40, guided=GuidedDecodingConfig(regex=r"Question: [a-z]{2,8}\?\nAnswer: [a-z]{2,8}\.")
    )
    rows = _request_rows(free, ["Explain entropy.", "State Newton's second law.", "What is pH?"])
    rows += [{**r, "key": "g", "unit_id": "g"} for r in _request_rows(guided, ["Write one QA pair."])]
    rows += [{**r, "key": "long", "unit_id": "long"} for r in _request_rows(free, ["word " * 3000])]
    ds = ray.data.from_arrow(pa.Table.from_pylist(rows, schema=REQUEST_SCHEMA))
    out = {r["key"]: r for r in generate(ds, engine).take_all()}

    assert set(out) == {"k0", "k1", "k2", "g", "long"}
    for key in ("k0", "k1", "k2"):
        assert out[key]["finish_reason"] in ("stop", "length") and out[key]["error"] is None
        assert out[key]["prompt_tokens"] > 5 and 0 < out[key]["completion_tokens"] <= 8
        assert out[key]["prompt_id"] == "test@v1" and out[key]["shard"] == "s"
    assert out["g"]["finish_reason"] == "stop"
    assert out["g"]["text"].startswith("Question: ") and "\nAnswer: " in out["g"]["text"]
    # A prompt longer than the server's context is one failed row, not a failed job.
    assert out["long"]["finish_reason"] == "error" and out["long"]["error"]

    # A wrong key is an error the endpoint reports on every row.
    monkeypatch.setenv("MS_TEST_KEY", "wrong")
    bad = generate(
        ray.data.from_arrow(pa.Table.from_pylist(rows[:1], schema=REQUEST_SCHEMA)), engine
    ).take_all()
    assert bad[0]["finish_reason"] == "error"


@pytest.mark.slow
def test_extract_qa_stage_on_the_openai_engine(
    openai_server, ray_cluster, tmp_path, textbooks_dir, monkeypatch
):
    """The extraction stage end to end on the openai engine; guided decoding makes the random
    model emit the asked-for format, so the parse path yields real QA rows."""
    import yaml

    from pipeline import run_config as rc
    from pipeline.extract.task import ExtractQATask
    from ray_jobs.llm_stage import run_llm_stage
    from tests.pipeline.llm.helpers import chunks_from_pdf, write_stage

    monkeypatch.setenv("MS_TEST_KEY", API_KEY)
    path = tmp_path / "openai.yaml"
    path.write_text(yaml.safe_dump({
        "run": {"name": "oa", "root": str(tmp_path / "runs")},
        "extract_qa": {
            "engine": {"kind": "openai", "model": "tiny", "base_url": openai_server, "api_key_env": "MS_TEST_KEY",
                       "concurrency": 2, "batch_size": 2},
            "sampling": {"max_tokens": 48, "guided": {"regex": r"Question: [a-z ]{4,30}\?\nAnswer: [a-z ]{4,30}\."}},
            "standards": ["low"],
        },
    }))  # fmt: skip
    config = rc.load(path)
    chunks = chunks_from_pdf(textbooks_dir / "physics_ostp_intro_physics_ch_gauss_potential_2019-06.pdf",
                             "physics", 2, max_chars=800)  # fmt: skip
    write_stage(config.run_dir.stage("chunk"), {"physics": chunks})
    stats = run_llm_stage(config, "extract_qa", ExtractQATask(config.stage("extract_qa")))
    assert stats["in"] == 2 and stats["passed"] == 2 and stats["out"] == 2, stats
    for row in config.run_dir.stage("extract_qa").read_table().to_pylist():
        assert row["question"].endswith("?") and row["answer"].endswith(".")
        assert row["gen"]["engine"] == "openai" and row["gen"]["model"] == "tiny"
        assert (
            row["gen"]["prompt"] == "qa_extraction_physics_low@v1" and row["gen"]["finish_reason"] == "stop"
        )
        assert row["raw_output"].startswith("Question: ")


def test_cpu_engines_get_a_fixed_kv_cache_unless_the_env_sets_one(monkeypatch):
    # Without it vLLM's CPU backend reserves 92% of all RAM and refuses to start beside other work.
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    assert vllm_engine_kwargs(EngineConfig(), False)["kv_cache_memory_bytes"] == 2**30
    assert "kv_cache_memory_bytes" not in vllm_engine_kwargs(EngineConfig(), True)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    assert "kv_cache_memory_bytes" not in vllm_engine_kwargs(EngineConfig(), False)


def test_a_missing_local_model_folder_is_a_config_error_before_any_engine_starts(tmp_path):
    from pipeline.config import ConfigError
    from pipeline.llm.config import EngineConfig
    from pipeline.llm.ray_engine import vllm_processor_parts

    with pytest.raises(ConfigError, match=r"no-such-model.*does not exist"):
        vllm_processor_parts(EngineConfig(kind="vllm", model=str(tmp_path / "no-such-model"), device="cpu"))
