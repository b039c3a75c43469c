"""The Ray Serve LLM app (tiny random Qwen3 on vLLM CPU, real HTTP on 127.0.0.1) and evaluation through it.

One app for the whole module (its start takes about a minute): the OpenAI client, the bad
requests (4xx, the server keeps serving), the API key, then real benchmark items evaluated through
the endpoint by concurrent request actors, and an interrupted run resumed without repeating a
single answered request — counted on the server side, in the ingress replica's access log.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import requests

from pipeline.eval import runner
from pipeline.eval.config import EvalConfig, EvalSamplingConfig
from pipeline.eval.scoring import ScoringPool
from pipeline.serve import app as serve_app
from pipeline.serve.config import ServeConfig, ServedModel

pytestmark = pytest.mark.slow

API_KEY_ENV = "MEGASCIENCE_TEST_SERVE_KEY"
APP = "test-eval-app"
MODEL = "tiny"


@pytest.fixture(scope="module")
def endpoint(ray_cluster, tiny_model_dir: Path):
    os.environ[API_KEY_ENV] = "secret-test-key"
    config = ServeConfig(
        app_name=APP,
        api_key_env=API_KEY_ENV,
        models=(
            ServedModel(
                model_id=MODEL,
                model_source=str(tiny_model_dir),
                max_model_len=2048,
                max_num_seqs=8,
                dtype="bfloat16",
            ),
        ),
    )
    ep = serve_app.deploy(config)
    try:
        yield ep
    finally:
        serve_app.teardown(ep)
        os.environ.pop(API_KEY_ENV, None)


def _served_completions() -> int:
    """POST /v1/completions lines in the ingress replicas' access logs: what the server received."""
    import ray

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs" / "serve"
    pattern = re.compile(r"POST /v1/completions \d{3}")
    return sum(
        len(pattern.findall(p.read_text(errors="ignore"))) for p in logs.glob(f"replica_{APP}_*Ingress*.log")
    )


def _settled_count(wait_s: float = 3.0) -> int:
    """The count once in-flight requests have finished and been logged."""
    previous = -1
    while True:
        current = _served_completions()
        if current == previous:
            return current
        previous = current
        time.sleep(wait_s)


def test_openai_client_models_chat_and_completions(endpoint):
    from openai import OpenAI

    client = OpenAI(base_url=endpoint.openai_base_url, api_key="secret-test-key", max_retries=0)
    assert [m.id for m in client.models.list().data] == [MODEL]
    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Name a noble gas."}], max_tokens=8, temperature=0
    )
    assert chat.choices[0].message.content is not None and chat.usage.completion_tokens <= 8
    completion = client.completions.create(
        model=MODEL, prompt="The boiling point of water is", max_tokens=6, temperature=0
    )
    assert (
        completion.choices[0].finish_reason in ("length", "stop") and completion.usage.completion_tokens <= 6
    )


def test_bad_requests_get_4xx_and_the_server_keeps_serving(endpoint):
    url = endpoint.openai_base_url
    auth = {"Authorization": "Bearer secret-test-key"}
    good = {"model": MODEL, "prompt": "Hello", "max_tokens": 4, "temperature": 0}
    cases = {
        "malformed JSON": ("completions", "{not json", 400),
        "prompt longer than max_model_len": ("completions", {**good, "prompt": "hello " * 2100}, 400),
        "negative temperature": ("completions", {**good, "temperature": -1}, 400),
        "top_p above 1": ("completions", {**good, "top_p": 3}, 400),
        "negative max_tokens": ("completions", {**good, "max_tokens": -5}, 400),
        "max_tokens beyond the context": ("completions", {**good, "max_tokens": 100000}, 400),
        "messages not a list": ("chat/completions", {"model": MODEL, "messages": "hi", "max_tokens": 4}, 400),
        "unknown model": ("completions", {**good, "model": "nope"}, 404),
    }
    for name, (route, body, expected) in cases.items():
        data = body if isinstance(body, str) else json.dumps(body)
        response = requests.post(
            f"{url}/{route}", data=data, headers={**auth, "Content-Type": "application/json"}, timeout=120
        )
        assert response.status_code == expected, f"{name}: {response.status_code} {response.text[:300]}"
        after = requests.post(f"{url}/completions", json=good, headers=auth, timeout=120)
        assert after.status_code == 200, f"server broken after {name}: {after.text[:300]}"
    # The API key: missing or wrong -> 401; the model list stays readable.
    assert requests.post(f"{url}/completions", json=good, timeout=60).status_code == 401
    wrong = requests.post(
        f"{url}/completions", json=good, headers={"Authorization": "Bearer nope"}, timeout=60
    )
    assert wrong.status_code == 401 and "API key" in wrong.text
    assert requests.get(f"{url}/models", timeout=60).status_code == 200


def _eval_config(
    benchmarks_dir: Path, tiny_model_dir: Path, benchmarks: tuple[str, ...], limit: int, max_tokens: int
):
    return EvalConfig(
        benchmarks=benchmarks,
        data_dir=str(benchmarks_dir),
        limit=limit,
        model=MODEL,
        tokenizer=str(tiny_model_dir),
        option_orders=("reference", "shuffled"),
        sampling=EvalSamplingConfig(max_tokens=max_tokens),
        scoring_workers=1,
    )


def test_real_benchmarks_end_to_end_with_concurrent_actors(
    endpoint, benchmarks_dir: Path, tiny_model_dir: Path, tmp_path
):
    from transformers import AutoTokenizer

    from pipeline.eval.actors import generate

    config = _eval_config(
        benchmarks_dir, tiny_model_dir, ("gpqa_diamond", "scibench", "pubmedqa", "piqa", "gsm8k"), 2, 12
    )
    items, missing = runner.load_items(config)
    assert not missing and set(items) == set(config.benchmarks)
    units = runner.plan_units(items, config, AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    requests_ = runner.build_requests(units, config)
    # 5 benchmarks: GPQA 2 + SciBench 3x2 + PubMedQA 2 + PIQA 2 + GSM8K 2 = 14 items; multiple choice
    # asks twice (two option orders), other items share one request across orders.
    assert len(units) == 28 and len(requests_) == 2 * (2 + 2 + 2) + 6 + 2
    before = _settled_count()
    responses, stats = generate(
        requests_, base_url=endpoint.base_url, cache_dir=str(tmp_path / "cache"), concurrency=3,
        api_key=endpoint.api_key, client_kwargs={"timeout_s": 300, "max_retries": 3},
    )  # fmt: skip
    assert stats["sent"] == len(requests_) and stats["cached"] == 0
    assert all(r.get("finish_reason") in ("length", "stop") for r in responses.values())
    assert _settled_count() - before == len(requests_)
    with ScoringPool(workers=1, timeout_s=30) as pool:
        rows = runner.score_units(units, responses, pool)
    assert len(rows) == 28 and all(r["output"] is not None and r["error"] is None for r in rows)
    gpqa = [r for r in rows if r["benchmark"] == "gpqa_diamond"]
    assert {r["gold"] for r in gpqa if r["option_order"] == "reference"} == {"D"}
    table = runner.predictions_table(rows)
    assert table.num_rows == 28 and table.schema.names[:4] == [
        "benchmark",
        "subtask",
        "item_id",
        "option_order",
    ]
    summary = runner.subtask_summary(rows)
    assert {s["subtask"] for s in summary} >= {
        "scibench-physics",
        "scibench-chemistry",
        "scibench-math",
        "PubMedQA",
    }

    again, stats = generate(
        requests_, base_url=endpoint.base_url, cache_dir=str(tmp_path / "cache"), concurrency=3
    )
    assert stats["sent"] == 0 and stats["cached"] == len(requests_) and again.keys() == responses.keys()


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_without_repeating_requests(
    endpoint, benchmarks_dir: Path, tiny_model_dir: Path, tmp_path
):
    from transformers import AutoTokenizer

    from pipeline.eval.actors import generate
    from pipeline.eval.client import ResponseCache

    config = _eval_config(benchmarks_dir, tiny_model_dir, ("medqa", "medmcqa", "cs_bench"), 3, 24)
    items, _ = runner.load_items(config)
    units = runner.plan_units(items, config, AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    requests_ = runner.build_requests(units, config)
    # 24 units; a shuffle that happens to keep the reference order asks the same prompt: one request.
    assert len(units) == 24 and len(requests_) == len({u.key for u in units}) >= 18
    cache_dir = str(tmp_path / "cache")
    kwargs = {
        "base_url": endpoint.base_url,
        "cache_dir": cache_dir,
        "concurrency": 3,
        "api_key": endpoint.api_key,
    }

    def interrupt_after_eight(done: int, total: int, seconds: float) -> None:
        if done == 8:
            raise _Interrupt("Ctrl-C")

    before = _settled_count()
    with pytest.raises(_Interrupt):
        generate(requests_, progress=interrupt_after_eight, **kwargs)
    first_run = _settled_count() - before
    cached = len(ResponseCache(cache_dir).load())
    assert cached == 8  # every answer that reached the driver is on disk
    assert 8 <= first_run <= 8 + 3  # plus at most the requests in flight when it stopped

    _, stats = generate(requests_, **kwargs)
    second_run = _settled_count() - before - first_run
    assert stats["cached"] == 8 and stats["sent"] == len(requests_) - 8
    assert second_run == len(requests_) - 8  # not one answered request sent again
    assert len(ResponseCache(cache_dir).load()) == len(requests_)
