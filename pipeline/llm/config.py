"""Frozen configs shared by every LLM stage: which engine runs the prompts and how to sample.

A stage's YAML section embeds them, e.g.::

    extract_qa:
      engine:
        kind: vllm                       # vllm (Ray Data LLM + vLLM) | openai (any /v1 endpoint)
        model: meta-llama/Llama-3.3-70B-Instruct
        tensor_parallel_size: 4
        concurrency: 2                   # engine replicas (data parallel)
        batch_size: 64
        max_model_len: 24576
      sampling: {temperature: 0.0, top_p: 0.9, max_tokens: 16000}

Nothing here imports Ray or vLLM; :mod:`pipeline.llm.ray_engine` turns these into Ray Data LLM
processor configs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.config import check


def cpu_kv_cache_kwargs() -> dict[str, Any]:
    """vLLM engine kwargs every CPU engine needs unless ``$VLLM_CPU_KVCACHE_SPACE`` (GiB) is set.

    vLLM's CPU backend otherwise reserves ``gpu_memory_utilization`` (0.92) of *all* RAM for its
    KV cache and refuses to start when other processes hold more than 8% of it. A fixed 1 GiB is
    plenty for the tiny model and small batches; give real CPU runs more via the env variable or
    ``engine_kwargs: {kv_cache_memory_bytes: …}``."""
    if os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return {}
    return {"kv_cache_memory_bytes": 2**30}


@dataclass(frozen=True)
class GuidedDecodingConfig:
    """Constrain the output (vLLM structured outputs). Set exactly one field.

    Args:
        choice: the output is exactly one of these strings (e.g. ``["YES", "NO"]``).
        regex: the output matches this regular expression.
        json_schema: the output is JSON valid under this schema (a JSON string of the schema).
    """

    choice: tuple[str, ...] = ()
    regex: str | None = None
    json_schema: str | None = None

    def __post_init__(self) -> None:
        n_set = sum([bool(self.choice), self.regex is not None, self.json_schema is not None])
        check(n_set == 1, "guided", "set exactly one of choice, regex, json_schema")
        if self.json_schema is not None:
            try:
                json.loads(self.json_schema)
            except json.JSONDecodeError as exc:
                check(False, "guided.json_schema", f"is not valid JSON: {exc}")

    def to_vllm(self) -> dict[str, Any]:
        """The ``structured_outputs`` mapping vLLM's ``SamplingParams`` (and its server) accept."""
        if self.choice:
            return {"choice": list(self.choice)}
        if self.regex is not None:
            return {"regex": self.regex}
        return {"json": json.loads(self.json_schema or "{}")}


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding parameters of one stage. The reference pipeline decodes greedily with top_p 0.9
    (no effect at temperature 0) and up to 16,000 new tokens.

    Args:
        temperature: 0 = greedy.
        top_p: nucleus sampling mass.
        max_tokens: new-token limit; an output that hits it is flagged ``finish_reason=length``
            and is not parsed as complete.
        seed: per-request seed (sampled stages that must be reproducible); ``null`` = none.
        stop: extra stop strings.
        guided: optional constrained decoding.
    """

    temperature: float = 0.0
    top_p: float = 0.9
    max_tokens: int = 16000
    seed: int | None = None
    stop: tuple[str, ...] = ()
    guided: GuidedDecodingConfig | None = None

    def __post_init__(self) -> None:
        check(self.temperature >= 0, "sampling.temperature", "must be >= 0")
        check(0 < self.top_p <= 1, "sampling.top_p", "must be in (0, 1]")
        check(self.max_tokens > 0, "sampling.max_tokens", "must be positive")

    def to_params(self, **overrides: Any) -> dict[str, Any]:
        """Plain sampling parameters (vLLM ``SamplingParams`` keyword names), ``None``s left out.

        ``overrides`` come from a request (a fan-out stage giving each sample its own seed).
        """
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop) or None,
        }
        if self.guided is not None:
            params["structured_outputs"] = self.guided.to_vllm()
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class EngineConfig:
    """Which engine runs a stage's prompts.

    ``kind: vllm`` runs vLLM inside the Ray cluster through Ray Data LLM
    (``vLLMEngineProcessorConfig`` + ``build_processor``): ``concurrency`` engine replicas, each
    over ``tensor_parallel_size × pipeline_parallel_size`` devices. ``kind: openai`` sends the same
    chat requests to any OpenAI-compatible ``/v1/chat/completions`` endpoint (the project's Ray
    Serve app, a vLLM server, a hosted API) through Ray Data LLM's HTTP request processor.

    Args:
        kind: ``vllm`` or ``openai``.
        model: vllm: ``name_or_path`` (HF id, local dir, ``builtin:tiny-qwen3``; resolved by
            :func:`pipeline.assets.resolve`); openai: the served model name sent in each request.
        batch_size: rows per batch handed to an engine replica (Ray Data block of requests).
        concurrency: engine replicas (vllm) or parallel HTTP workers (openai).
        tensor_parallel_size: vllm: GPUs per replica that split every layer.
        pipeline_parallel_size: vllm: GPUs per replica that split the layer stack.
        max_model_len: vllm: context length (prompt + output); ``null`` = the model's.
        max_num_seqs: vllm: sequences decoded together per replica; ``null`` = vLLM's default.
        enable_prefix_caching: vllm: reuse the KV cache of shared prompt prefixes (every request
            of a stage starts with the same long instruction).
        gpu_memory_utilization: vllm: share of GPU memory vLLM may take.
        dtype: vllm: ``auto``, ``bfloat16``, ``float16`` …
        enforce_eager: vllm: skip CUDA graph capture (faster start, slower decode).
        trust_remote_code: vllm: allow model code from the model repository.
        device: vllm: ``auto`` uses GPUs when the cluster has them and a CPU-only placement group
            otherwise; ``cpu`` / ``gpu`` force one.
        chat_template_kwargs: passed to the chat template (Qwen3: ``{enable_thinking: false}``).
        engine_kwargs: extra vLLM engine arguments, passed through unchanged.
        base_url: openai: the endpoint root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key_env: openai: name of the environment variable holding the API key (never the
            key itself); ``null`` sends no Authorization header.
        max_retries: openai: retries of a request on 429/5xx/connection errors, with exponential
            back-off starting at ``retry_base_seconds``.
        retry_base_seconds: openai: first back-off wait.
        timeout_s: openai: per-request timeout.
        qps: openai: per-worker request rate limit; ``null`` = unlimited.
    """

    kind: Literal["vllm", "openai"] = "vllm"
    model: str = "builtin:tiny-qwen3"
    batch_size: int = 64
    concurrency: int = 1
    # vllm
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    enable_prefix_caching: bool = True
    gpu_memory_utilization: float = 0.9
    dtype: str = "auto"
    enforce_eager: bool = False
    trust_remote_code: bool = False
    device: Literal["auto", "cpu", "gpu"] = "auto"
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    # openai
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    max_retries: int = 3
    retry_base_seconds: float = 1.0
    timeout_s: float = 600.0
    qps: int | None = None

    def __post_init__(self) -> None:
        check(bool(self.model), "engine.model", "must name a model")
        check(self.batch_size > 0, "engine.batch_size", "must be positive")
        check(self.concurrency > 0, "engine.concurrency", "must be positive")
        check(self.tensor_parallel_size > 0, "engine.tensor_parallel_size", "must be positive")
        check(self.pipeline_parallel_size > 0, "engine.pipeline_parallel_size", "must be positive")
        check(
            self.max_model_len is None or self.max_model_len > 0, "engine.max_model_len", "must be positive"
        )
        check(0 < self.gpu_memory_utilization <= 1, "engine.gpu_memory_utilization", "must be in (0, 1]")
        check(self.max_retries >= 0, "engine.max_retries", "must be >= 0")
        check(self.timeout_s > 0, "engine.timeout_s", "must be positive")
        if self.kind == "openai":
            check(
                bool(self.base_url) and str(self.base_url).startswith(("http://", "https://")),
                "engine.base_url",
                "kind=openai needs base_url, e.g. http://127.0.0.1:8000/v1",
            )
        reserved = {"model", "tensor_parallel_size", "pipeline_parallel_size", "max_model_len"}
        clash = sorted(reserved & set(self.engine_kwargs))
        check(not clash, "engine.engine_kwargs", f"set {clash} as engine fields, not in engine_kwargs")

    @property
    def devices_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


@dataclass(frozen=True)
class LLMStageConfig:
    """Fields every LLM stage config has; a stage's config subclasses it and adds its own.

    Args:
        input_stage: the run-directory stage whose completed shards are this stage's input.
        engine: which engine runs the prompts.
        sampling: decoding parameters.
        system_prompt: send the fixed generic system sentence before the user prompt (the
            reference does, except for CoT distillation).
        cache: keep every completion in ``<run>/_llm_cache/<stage>/`` so a killed or
            ``--force``d run regenerates only prompts it has no completion for (same prompt,
            model and sampling parameters). ``false`` always regenerates.
        cache_flush_rows: completions buffered before they are written to the cache.
        parse_workers: parallel workers that parse finished shards (CPU).
    """

    input_stage: str = "chunk"
    engine: EngineConfig = field(default_factory=EngineConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    system_prompt: bool = True
    cache: bool = True
    cache_flush_rows: int = 256
    parse_workers: int = 1

    def __post_init__(self) -> None:
        check(bool(self.input_stage), "input_stage", "must name the previous stage")
        check(self.cache_flush_rows > 0, "cache_flush_rows", "must be positive")
        check(self.parse_workers > 0, "parse_workers", "must be positive")
