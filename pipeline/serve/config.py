"""Configuration of the serving stage: one Ray Serve LLM application with one or several models.

```yaml
serve:
  app_name: megascience-llm
  port: 0                        # 0 = a free port picked at deploy time (never 8000 in tests)
  api_key_env: MEGASCIENCE_API_KEY   # optional: requests must send "Authorization: Bearer <key>"
  models:
    - model_id: qwen3-1.7b-megascience
      model_source: runs/x/train_sft/export     # HF id, local dir or builtin:tiny-qwen3
      max_model_len: 12288
      device: gpu
      tensor_parallel_size: 1
      autoscaling: {min_replicas: 1, max_replicas: 4, target_ongoing_requests: 32}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.config import check


@dataclass(frozen=True)
class AutoscalingConfig:
    """Ray Serve autoscaling of one model's replicas.

    Args:
        min_replicas: replicas kept up (0 scales to zero when idle; the first request then waits
            for an engine start).
        max_replicas: the most replicas Serve starts under load.
        target_ongoing_requests: requests per replica Serve aims for before adding one; vLLM
            batches them, so this is tens on a GPU.
        max_ongoing_requests: requests a replica accepts at once; more wait in Serve's queue
            (``null`` = Ray Serve LLM's default).
    """

    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: int | None = None
    max_ongoing_requests: int | None = None

    def __post_init__(self) -> None:
        check(self.min_replicas >= 0, "autoscaling.min_replicas", "must be >= 0")
        check(
            self.max_replicas >= max(1, self.min_replicas),
            "autoscaling.max_replicas",
            "must be >= min_replicas and >= 1",
        )
        for name in ("target_ongoing_requests", "max_ongoing_requests"):
            value = getattr(self, name)
            check(value is None or value > 0, f"autoscaling.{name}", "must be positive")


@dataclass(frozen=True)
class ServedModel:
    """One model in the app.

    Args:
        model_id: the name clients send as ``model`` (``/v1/models`` lists it).
        model_source: HF id, local directory (e.g. an SFT export) or a built-in
            (``builtin:tiny-qwen3``), resolved with :func:`pipeline.assets.resolve`.
        tokenizer_source: when the tokenizer lives elsewhere (``null`` = the model's).
        max_model_len: context length (prompt + output tokens); longer prompts get a 400.
        max_num_seqs: sequences a replica decodes together (``null`` = vLLM's default).
        dtype: ``auto``, ``bfloat16`` … (CPU: ``bfloat16``).
        device: ``cpu`` (vLLM CPU, one CPU bundle) or ``gpu``.
        tensor_parallel_size: GPUs per replica.
        accelerator_type: pin replicas to a GPU type (``A10G``, ``H100``…); ``null`` = any.
        enforce_eager: skip CUDA graph capture (faster start; always on for CPU).
        engine_kwargs: extra vLLM engine arguments, passed through.
        autoscaling: replica counts, see :class:`AutoscalingConfig`.
    """

    model_id: str
    model_source: str
    tokenizer_source: str | None = None
    max_model_len: int = 4096
    max_num_seqs: int | None = None
    dtype: str = "auto"
    device: Literal["cpu", "gpu"] = "cpu"
    tensor_parallel_size: int = 1
    accelerator_type: str | None = None
    enforce_eager: bool = False
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)

    def __post_init__(self) -> None:
        check(bool(self.model_id.strip()), "model_id", "must be set")
        check(bool(self.model_source), "model_source", "must name a model (HF id, local dir or builtin:…)")
        check(self.max_model_len > 0, "max_model_len", "must be positive")
        check(self.tensor_parallel_size > 0, "tensor_parallel_size", "must be positive")
        check(self.max_num_seqs is None or self.max_num_seqs > 0, "max_num_seqs", "must be positive")
        reserved = {"model", "max_model_len", "tensor_parallel_size", "dtype", "max_num_seqs"}
        clash = sorted(reserved & set(self.engine_kwargs))
        check(not clash, "engine_kwargs", f"set {clash} as model fields, not in engine_kwargs")


@dataclass(frozen=True)
class ServeConfig:
    """The Serve application.

    Args:
        app_name: Serve application name (``serve status`` shows it; ``serve.delete`` removes it).
        route_prefix: where the OpenAI routes hang (``/`` gives ``/v1/...``).
        host: HTTP bind address of Serve's proxy (``0.0.0.0`` to reach it from other machines).
        port: HTTP port; ``0`` picks a free one at deploy time. Serve's proxy keeps the port of the
            first app deployed on a cluster.
        api_key_env: name of an environment variable holding the API key (the key never sits in
            a config file); ``null`` = no authentication. The deploying process must see it.
        models: one entry per served model (base model, fine-tuned checkpoints…).
        ready_timeout_s: how long deploy waits for every model to answer.
    """

    models: tuple[ServedModel, ...] = (ServedModel(model_id="tiny-qwen3", model_source="builtin:tiny-qwen3"),)
    app_name: str = "megascience-llm"
    route_prefix: str = "/"
    host: str = "127.0.0.1"
    port: int = 0
    api_key_env: str | None = None
    ready_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        check(len(self.models) > 0, "serve.models", "list at least one model")
        ids = [m.model_id for m in self.models]
        check(len(set(ids)) == len(ids), "serve.models", f"model_id values must be unique, got {ids}")
        check(0 <= self.port < 65536, "serve.port", "must be 0 (pick a free port) or a TCP port")
        check(self.route_prefix.startswith("/"), "serve.route_prefix", "must start with /")
        check(self.ready_timeout_s > 0, "serve.ready_timeout_s", "must be positive")
