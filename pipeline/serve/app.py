"""Build, deploy, wait for and remove the Ray Serve LLM application (this module *is* the Serve construct).

:func:`llm_configs` turns :class:`ServeConfig` into ``ray.serve.llm.LLMConfig`` objects (CPU
models get vLLM's CPU engine and a CPU-only placement group; GPU models get ``accelerator_type``
and tensor parallelism), :func:`build_app` wraps them with ``build_openai_app`` (one OpenAI
ingress in front of all models, the API-key ingress when a key is configured), :func:`deploy`
starts Serve's HTTP proxy on the configured host/port and runs the app, and :func:`wait_ready`
polls ``/v1/models`` and one tiny completion per model. Request validation (malformed JSON,
prompts longer than ``max_model_len``, out-of-range sampling parameters) is vLLM's OpenAI
protocol layer inside Ray Serve LLM: each returns a 4xx and the replica keeps serving
(``tests/pipeline/serve`` checks every case).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from pipeline import assets
from pipeline.llm.config import cpu_kv_cache_kwargs
from pipeline.serve.config import ServeConfig, ServedModel

log = logging.getLogger(__name__)

# Environment the engine replicas must see (they may run on other nodes than the deployer).
REPLICA_ENV = (
    "HF_HUB_OFFLINE",
    "HF_TOKEN",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_CPU_OMP_THREADS_BIND",
    "MEGASCIENCE_CACHE",
)


@dataclass(frozen=True)
class Endpoint:
    """Where a deployed (or attached) app answers."""

    base_url: str  # e.g. http://127.0.0.1:52311  (OpenAI routes under /v1)
    model_ids: tuple[str, ...]
    app_name: str | None = None  # set when this process deployed it (and may tear it down)
    api_key: str | None = None

    @property
    def openai_base_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def engine_kwargs(model: ServedModel) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_model_len": model.max_model_len, "dtype": model.dtype}
    if model.max_num_seqs is not None:
        kwargs["max_num_seqs"] = model.max_num_seqs
    if model.device == "cpu":
        kwargs["enforce_eager"] = True  # no CUDA graphs on CPU
        kwargs.update(cpu_kv_cache_kwargs())
    else:
        kwargs["tensor_parallel_size"] = model.tensor_parallel_size
        kwargs["enforce_eager"] = model.enforce_eager
    if model.tokenizer_source:
        kwargs["tokenizer"] = assets.resolve(model.tokenizer_source)
    kwargs.update(model.engine_kwargs)
    return kwargs


def llm_configs(config: ServeConfig) -> list[Any]:
    """One ``LLMConfig`` per served model."""
    from ray.serve.llm import LLMConfig

    out = []
    for model in config.models:
        autoscaling: dict[str, Any] = {
            "min_replicas": model.autoscaling.min_replicas,
            "max_replicas": model.autoscaling.max_replicas,
        }
        if model.autoscaling.target_ongoing_requests is not None:
            autoscaling["target_ongoing_requests"] = model.autoscaling.target_ongoing_requests
        deployment: dict[str, Any] = {"autoscaling_config": autoscaling}
        if model.autoscaling.max_ongoing_requests is not None:
            deployment["max_ongoing_requests"] = model.autoscaling.max_ongoing_requests
        kwargs: dict[str, Any] = {
            "model_loading_config": {
                "model_id": model.model_id,
                "model_source": assets.resolve(model.model_source),
            },
            "engine_kwargs": engine_kwargs(model),
            "deployment_config": deployment,
        }
        env = {k: os.environ[k] for k in REPLICA_ENV if k in os.environ}
        if env:
            kwargs["runtime_env"] = {"env_vars": env}
        if model.device == "cpu":
            # Without a CPU-only placement group Ray Serve LLM asks for a GPU (ENV-NOTES).
            kwargs["placement_group_config"] = {"bundles": [{"CPU": 1}]}
        elif model.accelerator_type:
            kwargs["accelerator_type"] = model.accelerator_type
        out.append(LLMConfig(**kwargs))
    return out


def api_key_from_env(config: ServeConfig) -> str | None:
    if not config.api_key_env:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise RuntimeError(
            f"serve.api_key_env is {config.api_key_env!r} but that environment variable is empty: "
            f"export {config.api_key_env}=<key> in the shell that deploys (or set api_key_env: null)"
        )
    return key


def build_app(config: ServeConfig, api_key: str | None = None) -> Any:
    """The Serve application: ``build_openai_app`` over all models (API-key ingress when a key is given)."""
    from ray.serve.llm import build_openai_app

    args: dict[str, Any] = {"llm_configs": llm_configs(config)}
    if api_key:
        from pipeline.serve.ingress import ApiKeyIngress, key_digest

        args["ingress_cls_config"] = {
            "ingress_cls": ApiKeyIngress,
            "ingress_extra_kwargs": {"api_key_sha256": key_digest(api_key)},
        }
    return build_openai_app(args)


def _running_proxy_port() -> int | None:
    """The HTTP port of a Serve instance already running on this cluster, if any."""
    # Serve has no public getter for its proxy options; the controller client has them.
    from ray.serve.context import _get_global_client

    try:
        client = _get_global_client(raise_if_no_controller_running=False)
    except Exception:
        return None
    return client.http_config.port if client is not None else None


def deploy(config: ServeConfig, *, blocking_ready: bool = True) -> Endpoint:
    """Start Serve's proxy (if needed) and run the app; returns its endpoint once every model answers."""
    from ray import serve
    from ray.serve.api import RunTarget

    api_key = api_key_from_env(config)
    port = _running_proxy_port()
    host = config.host
    if port is None:
        port = config.port or free_port(config.host)
        serve.start(http_options={"host": config.host, "port": port})
    elif config.port and config.port != port:
        log.warning("Serve already listens on port %d; serve.port=%d is ignored", port, config.port)
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    started = time.time()
    # Serve's own run() waits for RUNNING without a limit; deploy without waiting and let
    # wait_ready() poll with the configured timeout and report why replicas do not start.
    serve.run_many(
        [RunTarget(build_app(config, api_key), name=config.app_name, route_prefix=config.route_prefix)],
        wait_for_applications_running=False,
    )
    prefix = config.route_prefix.rstrip("/")
    endpoint = Endpoint(
        base_url=f"http://{connect_host}:{port}{prefix}",
        model_ids=tuple(m.model_id for m in config.models),
        app_name=config.app_name,
        api_key=api_key,
    )
    if blocking_ready:
        wait_ready(endpoint, timeout_s=config.ready_timeout_s)
        log.info(
            "Serve app %s ready at %s in %.0fs", config.app_name, endpoint.base_url, time.time() - started
        )
    return endpoint


def wait_ready(endpoint: Endpoint, timeout_s: float = 900.0, poll_s: float = 2.0) -> None:
    """Block until ``/v1/models`` lists every model and each answers a 1-token completion.

    Fails early when Serve reports the app DEPLOY_FAILED; on timeout the error carries Serve's
    status message (e.g. replicas pending resources) and the cluster's free resources.
    """
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    deadline = time.time() + timeout_s
    pending = set(endpoint.model_ids)
    last_error = "no answer yet"
    while pending:
        status, message = app_status(endpoint.app_name)
        if status == "DEPLOY_FAILED":
            raise RuntimeError(
                f"Serve app {endpoint.app_name!r} failed to deploy: {message}\n"
                "Fix the serve: section (model_source, max_model_len, resources) and rerun; replica logs "
                "are under the Ray session's logs/serve/."
            )
        if time.time() > deadline:
            raise TimeoutError(
                f"Serve app {endpoint.app_name!r} at {endpoint.base_url} not ready after {timeout_s:.0f}s "
                f"(models still loading: {sorted(pending)}; Serve status {status}: {message or '-'}; "
                f"last error: {last_error}; cluster resources free: {_free_resources()}). "
                "If replicas wait for resources, free them (another app? `serve status`) or lower the "
                "serve: section's resources; otherwise check the replica logs under the Ray session's logs/serve/."
            )
        if status in ("RUNNING", "UNKNOWN"):  # HTTP is the last word once Serve says RUNNING
            for model_id in sorted(pending):
                error = _probe(endpoint, model_id, headers)
                if error is None:
                    pending.discard(model_id)
                else:
                    last_error = error
        if pending:
            time.sleep(poll_s)


def _probe(endpoint: Endpoint, model_id: str, headers: dict[str, str]) -> str | None:
    """``None`` when the model answers a 1-token completion, else what went wrong."""
    import requests

    try:
        response = requests.post(
            f"{endpoint.openai_base_url}/completions",
            json={"model": model_id, "prompt": "ready?", "max_tokens": 1, "temperature": 0},
            headers=headers,
            timeout=30,
        )
    except requests.RequestException as exc:
        return f"{model_id}: {exc}"
    if response.status_code == 200:
        return None
    return f"{model_id}: HTTP {response.status_code} {response.text[:200]}"


def app_status(app_name: str | None) -> tuple[str, str]:
    """Serve's status and message for one application (``("UNKNOWN", why)`` without a controller)."""
    if not app_name:
        return "RUNNING", ""  # an external endpoint: only HTTP tells
    from ray import serve

    try:
        app = serve.status().applications.get(app_name)
    except Exception as exc:  # no Serve controller in this cluster (an external endpoint)
        return "UNKNOWN", str(exc)
    if app is None:
        return "NOT_FOUND", f"no application {app_name!r} on this cluster"
    message = app.message or "; ".join(
        f"{name}: {d.message}" for name, d in app.deployments.items() if d.message
    )
    return app.status.value, message


def _free_resources() -> dict[str, float]:
    import ray

    try:
        return {k: v for k, v in ray.available_resources().items() if not k.startswith("node:")}
    except Exception:
        return {}


def teardown(endpoint: Endpoint) -> None:
    """Delete the app this process deployed (the Serve proxy and other apps stay)."""
    from ray import serve

    if endpoint.app_name:
        serve.delete(endpoint.app_name, _blocking=True)
