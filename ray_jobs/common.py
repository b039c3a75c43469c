"""The thin Ray layer every ``ray_jobs/<stage>.py`` shares.

- :func:`stage_cli` parses the common flags (``--config``, ``--set section.key=value``,
  ``--force``, ``--address``) and loads the run config.
- :func:`connect` joins the cluster a ``ray job submit`` runs in (``$RAY_ADDRESS``), an explicit
  address, or starts a local Ray.
- :func:`begin_stage` / :func:`finish_stage` implement "a finished stage is a no-op": the
  ``_SUCCESS`` marker plus a fingerprint of the stage's config.
- :func:`map_shards` runs one library function per pending shard with Ray Data (one shard per
  block, so progress bars count shards and a killed job loses only the shards in flight).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline import run_config as rc
from pipeline.config import ConfigError
from pipeline.rundir import ShardResult, StageDir

log = logging.getLogger("megascience")

# Environment a local cluster's workers need to see (they inherit the driver's environment).
PASSTHROUGH_ENV = (
    "HF_HUB_OFFLINE",
    "HF_HOME",
    "TRANSFORMERS_OFFLINE",
    "MEGASCIENCE_CACHE",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_CPU_OMP_THREADS_BIND",
    "TESSDATA_PREFIX",
    "TOKENIZERS_PARALLELISM",
    "OMP_NUM_THREADS",
)


def stage_cli(description: str, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, rc.RunConfig]:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="run YAML (see ray_jobs/configs/)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set run.name=try2 --set parse.ocr.engine=none",
    )
    parser.add_argument("--force", action="store_true", help="delete this stage's output and recompute it")
    parser.add_argument("--address", default=None, help="Ray address (default: $RAY_ADDRESS or a local Ray)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        overrides = dict(rc.parse_override(s) for s in args.set)
        config = rc.load(args.config, overrides)
    except ConfigError as exc:
        parser.exit(2, f"config error: {exc}\n")
    return args, config


def connect(config: rc.RunConfig, address: str | None = None) -> None:
    """Join or start Ray. Under ``ray job submit`` ``$RAY_ADDRESS`` is set and is joined."""
    import ray

    if ray.is_initialized():
        return
    address = address or config.run.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    ray.init(
        num_cpus=config.run.num_cpus,
        include_dashboard=False,
        runtime_env={"env_vars": env} if env else None,
    )


def begin_stage(config: rc.RunConfig, section: str, force: bool = False) -> StageDir | None:
    """The stage's directory, or ``None`` when it already finished with the same config."""
    stage = config.run_dir.stage(section)
    if force:
        stage.reset()
    done = stage.completed_fingerprint()
    if done is not None:
        if done != config.fingerprint(section):
            raise SystemExit(
                f"[{section}] {stage.uri} finished earlier with a different {section} config "
                f"(fingerprint {done} != {config.fingerprint(section)}). Rerun with --force to "
                "recompute it (later stages must then be recomputed too), or choose another run.name."
            )
        print(f"[{section}] already complete: {stage.uri} (delete it or pass --force to recompute)")
        return None
    return stage


def require_stage(config: rc.RunConfig, section: str, needed_by: str) -> StageDir:
    """The finished stage ``section`` that ``needed_by`` reads; a clear error when it is not done."""
    stage = config.run_dir.stage(section)
    if not stage.is_complete():
        raise SystemExit(
            f"[{needed_by}] needs the {section!r} stage's output, but {stage.uri} is not complete. "
            f"Run it first: python -m ray_jobs.{section} --config {config.source or '<run.yaml>'}"
        )
    return stage


def map_shards(
    shards: list[dict[str, Any]],
    worker: type,
    worker_kwargs: dict[str, Any],
    *,
    num_cpus: float = 1.0,
    concurrency: int | None = None,
    num_gpus: float = 0.0,
    node_type: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``worker`` over the shards with Ray Data, ``concurrency`` actors at once.

    ``worker`` is a plain callable class from ``pipeline/``: ``__init__(**worker_kwargs)`` loads
    what it needs once per actor; ``__call__(shard: dict)`` does one shard's work (writing its
    output) and returns a :class:`ShardResult` or a JSON-able dict, which come back as dicts.
    Shard dicts must hold only strings and numbers (nest structures as JSON strings).
    ``num_gpus`` reserves GPUs per actor (an embedding model, for instance); ``node_type`` pins
    the actors to a ``cluster.yaml`` node type (see ``StageResources.node_type``).
    Each result dict also gets ``_node_id``: the Ray node that did the work."""
    import ray

    if not shards:
        return []

    class _Adapter:
        # Ray Data hands over one-row batches (dict of columns); the library speaks plain dicts.
        def __init__(self) -> None:
            self.fn = worker(**worker_kwargs)
            self.node_id = ray.get_runtime_context().get_node_id()

        def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
            rows = [{k: _plain(v) for k, v in zip(batch, values)} for values in zip(*batch.values())]
            out = []
            for row in rows:
                result = self.fn(row)
                result = result.to_json() if isinstance(result, ShardResult) else dict(result)
                out.append(json.dumps({**result, "_node_id": self.node_id}))
            return {"result": out}

    n_workers = concurrency or max(1, int(ray.available_resources().get("CPU", 1) // num_cpus))
    ds = ray.data.from_items(shards, override_num_blocks=len(shards))
    ds = ds.map_batches(
        _Adapter,
        batch_size=1,
        batch_format="numpy",
        num_cpus=num_cpus,
        compute=ray.data.ActorPoolStrategy(size=min(n_workers, len(shards))),
        # A sliver of the node type's custom resource pins the actors to that node type.
        resources={node_type: 0.001} if node_type else None,
        **({"num_gpus": num_gpus} if num_gpus else {}),
    )
    return [json.loads(row["result"]) for row in ds.iter_rows()]


def _plain(value: Any) -> Any:
    # numpy scalars from a numpy-format batch -> Python values
    return value.item() if hasattr(value, "item") else value


def nodes_used(results: list[dict[str, Any]]) -> int:
    """How many Ray nodes did the shards of this invocation (shown in stats as ``nodes``)."""
    return len({r["_node_id"] for r in results if r.get("_node_id")})


def finish_stage(config: rc.RunConfig, section: str, stage: StageDir, started: float, **extra: Any) -> dict:
    stats = stage.finish(config.fingerprint(section), time.time() - started, extra or None)
    print_stats(stats)
    return stats


def print_stats(stats: dict[str, Any]) -> None:
    rejected = ", ".join(f"{k}={v}" for k, v in stats["rejected"].items()) or "none"
    lines = [
        f"[{stats['stage']}] in={stats['in']} passed={stats['passed']} out={stats['out']} "
        f"rejected={stats['rejected_total']} ({rejected}) in {stats['seconds']:.1f}s",
    ]
    for unit, acc in stats.get("units", {}).items():
        r = ", ".join(f"{k}={v}" for k, v in acc["rejected"].items()) or "none"
        lines.append(f"[{stats['stage']}]   {unit}: in={acc['in']} passed={acc['passed']} rejected: {r}")
    if stats.get("counters"):
        lines.append(f"[{stats['stage']}]   " + ", ".join(f"{k}={v:g}" for k, v in stats["counters"].items()))
    print("\n".join(lines), file=sys.stdout, flush=True)


def with_stage_refs(config: rc.RunConfig, serve_cfg: Any) -> Any:
    """A Serve config whose ``stage:<name>`` model/tokenizer sources point into this run
    (``stage:train_sft`` → the fine-tuned model SFT exported)."""
    import dataclasses

    models = tuple(
        dataclasses.replace(
            m,
            model_source=config.resolve_ref(m.model_source),
            tokenizer_source=config.resolve_ref(m.tokenizer_source) if m.tokenizer_source else None,
        )
        for m in serve_cfg.models
    )
    return dataclasses.replace(serve_cfg, models=models)


def run_main(main: Callable[[], Any]) -> None:
    """Entrypoint wrapper: configuration mistakes exit with code 2 and the message, no traceback."""
    try:
        main()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
