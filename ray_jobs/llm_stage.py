"""The generic driver of every LLM stage (extraction, refinement, judges, distillation, …).

:func:`run_llm_stage` runs one :class:`pipeline.llm.LLMTask` over the completed shards of its
input stage::

    read pending input shards (Ray Data) ─► plan request rows, drop those already in the cache
      ─► engine (Ray Data LLM: vLLM replicas or an OpenAI-compatible endpoint)
      ─► stream completions to the driver, append them to <run>/_llm_cache/<stage>/ as they come
    then, per pending shard (Ray Data, ``parse_workers`` at a time):
      join completions ─► task.parse ─► <stage>/data/<shard>.parquet + rejects + shard marker

One engine start serves every pending shard (a 70B engine takes minutes to load; starting one per
shard would dominate). A job killed mid-way keeps every flushed completion: its rerun generates
only the prompts without one, then parses. Shards whose marker exists are not touched again.

A stage's ``ray_jobs/<stage>.py`` is then three lines: parse the CLI, connect, call this.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import run_config as rc
from pipeline.llm.cache import CompletionCache
from pipeline.llm.config import LLMStageConfig
from pipeline.llm.stage import (
    REQUEST_SCHEMA,
    EngineIdentity,
    completion_from_row,
    finish_shard,
    plan_requests,
)
from pipeline.llm.task import LLMTask
from pipeline.rundir import ShardResult, StageDir
from pipeline.schema import require_columns
from ray_jobs.common import begin_stage, finish_stage, map_shards

log = logging.getLogger("megascience")

# (Dataset of request rows) -> Dataset of completion rows. Default: pipeline.llm.ray_engine.generate.
EngineFn = Callable[[Any], Any]


def run_llm_stage(
    config: rc.RunConfig,
    section: str,
    task: LLMTask,
    *,
    force: bool = False,
    engine_fn: EngineFn | None = None,
) -> dict[str, Any] | None:
    """Run ``task`` as stage ``section`` of the run; returns ``stats.json`` (None if already done).

    Args:
        config: the run config; ``config.stage(section)`` must be an :class:`LLMStageConfig`.
        section: the stage (and config section) name, e.g. ``"extract_qa"``.
        task: the stage's prompt builder + parser.
        force: delete the stage's outputs first (cached completions are kept and reused).
        engine_fn: replaces the configured engine (tests script one); the real path is
            :func:`pipeline.llm.ray_engine.generate`.
    """
    started = time.time()
    stage = begin_stage(config, section, force)
    if stage is None:
        return None
    cfg: LLMStageConfig = config.stage(section)
    if not isinstance(cfg, LLMStageConfig):
        raise TypeError(f"[{section}] config must subclass LLMStageConfig, got {type(cfg).__name__}")
    inputs = config.run_dir.stage(cfg.input_stage)
    if not inputs.is_complete():
        raise SystemExit(
            f"[{section}] input stage {cfg.input_stage!r} has not finished ({inputs.uri}/_SUCCESS is "
            f"missing): run `python -m ray_jobs.{cfg.input_stage} --config {config.source}` first"
        )
    files = {Path(f).stem: f for f in inputs.data_files()}
    done = stage.done_shards()
    pending = {shard: path for shard, path in sorted(files.items()) if shard not in done}
    print(f"[{section}] {len(files)} input shards from {cfg.input_stage}: {len(done)} done, {len(pending)} to do",
          flush=True)  # fmt: skip
    identity = EngineIdentity.of(cfg.engine, cfg.sampling)
    cache = CompletionCache.for_stage(config.run_dir.uri, section, cfg.engine.model, cfg.cache_flush_rows)
    generated = 0
    if pending:
        if not cfg.cache:
            cache.clear()
        for path in pending.values():  # fail at the door, before an engine starts
            require_columns(section, pq.read_schema(path, filesystem=inputs.fs).names, task.input_columns)
        generated = _generate_missing(section, task, cfg, identity, inputs, pending, cache, engine_fn)
        results = map_shards(
            [{"shard": s, "path": p} for s, p in pending.items()],
            ShardParser,
            {
                "task": task,
                "section": section,
                "run_uri": config.run_dir.uri,
                "input_stage": cfg.input_stage,
                "identity": identity,
                "cache_uri": cache.uri,
            },
            num_cpus=1,
            concurrency=min(cfg.parse_workers, len(pending)),
        )
        log.info("[%s] parsed %d shards", section, len(results))
    return finish_stage(
        config,
        section,
        stage,
        started,
        model=cfg.engine.model,
        engine=cfg.engine.kind,
        prompt=task.prompt_id,
        generated_this_run=generated,
    )


def _generate_missing(
    section: str,
    task: LLMTask,
    cfg: LLMStageConfig,
    identity: EngineIdentity,
    inputs: StageDir,
    pending: dict[str, str],
    cache: CompletionCache,
    engine_fn: EngineFn | None,
) -> int:
    """Send every request of the pending shards that the cache lacks through the engine."""
    import ray

    cached = frozenset(cache.keys(pending)) if cfg.cache else frozenset()

    def plan(batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        requests = []
        by_path: dict[str, list[dict]] = {}
        for row in rows:
            by_path.setdefault(row.pop("path"), []).append(row)
        for path, group in by_path.items():  # shard name = input file stem, as in run_llm_stage
            requests += plan_requests(task, group, identity, Path(path).stem)
        return pa.Table.from_pylist([r for r in requests if r["key"] not in cached], schema=REQUEST_SCHEMA)

    ds = ray.data.read_parquet(
        list(pending.values()),
        filesystem=inputs.fs,
        include_paths=True,
        columns=_read_columns(task, pending, inputs),
    )
    # One block per engine batch: a block's completions reach the driver (and the cache) when its
    # batch finishes, so a crash loses only the batches in flight. Materialised (spilling to disk
    # if large) so the total is known for progress and a fully cached rerun starts no engine.
    requests = (
        ds.map_batches(plan, batch_format="pyarrow", batch_size=256)
        .repartition(target_num_rows_per_block=cfg.engine.batch_size)
        .materialize()
    )
    n_total = requests.count()
    print(f"[{section}] {n_total} prompts to generate ({len(cached)} already in the cache)", flush=True)
    if n_total == 0:
        return 0
    if engine_fn is None:
        from pipeline.llm.ray_engine import generate

        completions = generate(requests, cfg.engine)
    else:
        completions = engine_fn(requests)
    received = 0
    out_tokens = 0
    t0 = last = time.time()
    try:
        for batch in completions.iter_batches(batch_format="pyarrow", batch_size=None):
            rows = batch.to_pylist()
            cache.add(rows)
            received += len(rows)
            out_tokens += sum(int(r.get("completion_tokens") or 0) for r in rows)
            if time.time() - last > 30 or received == n_total:
                last = time.time()
                rate = received / max(last - t0, 1e-9)
                print(f"[{section}] {received}/{n_total} completions ({rate:.2f} prompts/s, "
                      f"{out_tokens / max(last - t0, 1e-9):.1f} generated tok/s)", file=sys.stdout, flush=True)  # fmt: skip
    finally:
        cache.flush()  # whatever arrived before a failure is kept for the rerun
    if received < n_total:
        raise RuntimeError(
            f"[{section}] the engine returned {received} completions for {n_total} prompts; rerun the "
            "stage (completed prompts are cached) and check the engine logs"
        )
    return received


def _read_columns(task: LLMTask, pending: dict[str, str], inputs: StageDir) -> list[str] | None:
    # Only the columns requests are built from (LLMTask.input_columns); parsing re-reads whole rows.
    if not task.input_columns:
        return None
    names = pq.read_schema(next(iter(pending.values())), filesystem=inputs.fs).names
    return [c for c in names if c in set(task.input_columns) | {task.id_column}]


class ShardParser:
    """Parse one shard's cached completions into its output and rejects (a ``map_shards`` worker)."""

    def __init__(self, task: LLMTask, section: str, run_uri: str, input_stage: str, identity: EngineIdentity,
                 cache_uri: str):  # fmt: skip
        self.task = task
        self.section = section
        self.stage = StageDir(run_uri, section)
        self.inputs = StageDir(run_uri, input_stage)
        self.identity = identity
        self.cache = CompletionCache(cache_uri, identity.model)

    def __call__(self, shard: dict[str, Any]) -> ShardResult:
        table = pq.read_table(shard["path"], filesystem=self.inputs.fs)
        completions = {
            key: completion_from_row(row, self.identity)
            for key, row in self.cache.lookup([shard["shard"]]).items()
        }
        result, data, rejects = finish_shard(
            self.task,
            self.section,
            shard["shard"],
            table.to_pylist(),
            table.schema,
            completions,
            self.identity,
            source=shard["path"],
        )
        self.stage.write_shard(result, data, rejects)
        return result
