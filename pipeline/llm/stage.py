"""The engine-independent half of running an LLM stage over one input shard.

1. :func:`plan_requests` turns a shard's rows into request rows (one per chat request), each with
   a cache key — a hash of the model, prompt name@version, messages and sampling parameters — so
   identical work is never generated twice.
2. An engine (``pipeline.llm.ray_engine``, or a scripted one in tests) answers the request rows
   with completion rows (:data:`COMPLETION_COLUMNS`).
3. :func:`finish_shard` joins the completions back to their units, applies the truncation and
   error policy, calls the task's parser and returns the shard's output table, rejects table and
   counts (in = passed + rejected).

Plain Python and Arrow; the Ray wiring lives in ``ray_jobs/llm_stage.py``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.llm.config import EngineConfig, SamplingConfig
from pipeline.llm.task import (
    ENGINE_ERROR,
    GEN_TYPE,
    NO_OUTPUT,
    TRUNCATED,
    Completion,
    LLMTask,
    Reject,
    provenance,
)
from pipeline.rundir import ShardResult, make_rejects, stable_id
from pipeline.schema import require_columns

# What goes into an engine: one row per chat request.
REQUEST_SCHEMA = pa.schema(
    [
        ("key", pa.string()),  # cache key (see request_key)
        ("shard", pa.string()),  # output shard the request belongs to
        ("unit_id", pa.string()),
        ("prompt_id", pa.string()),  # name@version
        ("messages_json", pa.string()),  # JSON list of {role, content}
        ("sampling_json", pa.string()),  # JSON of the sampling parameters (vLLM names)
    ]
)

# What comes out of an engine: one row per request.
COMPLETION_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("unit_id", pa.string()),
        ("prompt_id", pa.string()),
        ("sampling_json", pa.string()),
        ("text", pa.string()),
        ("finish_reason", pa.string()),  # stop | length | error
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("error", pa.string()),
    ]
)
COMPLETION_COLUMNS = tuple(COMPLETION_SCHEMA.names)


@dataclass(frozen=True)
class EngineIdentity:
    """What makes two completions of the same messages interchangeable: model and sampling."""

    model: str
    engine: str
    sampling: SamplingConfig

    @classmethod
    def of(cls, engine: EngineConfig, sampling: SamplingConfig) -> EngineIdentity:
        return cls(model=engine.model, engine=engine.kind, sampling=sampling)


def request_key(model: str, prompt_id: str, messages_json: str, sampling_json: str) -> str:
    """Cache key of one request: same model, prompt version, messages and sampling → same key."""
    return stable_id("llm-request", model, prompt_id, messages_json, sampling_json, length=24)


def plan_requests(
    task: LLMTask, rows: Iterable[Mapping[str, Any]], identity: EngineIdentity, shard: str
) -> list[dict[str, Any]]:
    """Request rows (:data:`REQUEST_SCHEMA`) for every unit of ``rows``, in order (a unit id seen
    twice is planned once)."""
    out = []
    seen: set[str] = set()
    for row in rows:
        for unit in task.expand(row):
            unit_id = task.unit_id(unit)
            if unit_id in seen:  # the same unit twice in a shard is generated (and counted) once
                continue
            seen.add(unit_id)
            for request in task.requests(unit):
                messages_json = json.dumps([dict(m) for m in request.messages], ensure_ascii=False)
                sampling_json = json.dumps(identity.sampling.to_params(**request.sampling), sort_keys=True)
                out.append(
                    {
                        "key": request_key(identity.model, request.prompt, messages_json, sampling_json),
                        "shard": shard,
                        "unit_id": unit_id,
                        "prompt_id": request.prompt,
                        "messages_json": messages_json,
                        "sampling_json": sampling_json,
                    }
                )
    return out


def completion_from_row(row: Mapping[str, Any], identity: EngineIdentity) -> Completion:
    """A :class:`Completion` from a completion row (engine output or cache)."""
    return Completion(
        text=row.get("text") or "",
        finish_reason=row["finish_reason"],
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
        model=row.get("model") or identity.model,
        engine=row.get("engine") or identity.engine,
        prompt=row.get("prompt_id") or "",
        sampling=row.get("sampling_json") or "{}",
        error=row.get("error") or None,
    )


def output_schema_with_gen(task: LLMTask, input_schema: pa.Schema) -> pa.Schema:
    schema = task.output_schema(input_schema)
    if "gen" not in schema.names:
        schema = schema.append(pa.field("gen", GEN_TYPE))
    return schema


def finish_shard(
    task: LLMTask,
    stage: str,
    shard: str,
    rows: Sequence[Mapping[str, Any]],
    input_schema: pa.Schema,
    completions: Mapping[str, Completion],
    identity: EngineIdentity,
    source: str | None = None,
) -> tuple[ShardResult, pa.Table, pa.Table]:
    """Parse one shard: output table, rejects table and counts.

    Args:
        task: the stage's task.
        stage: stage name (rejects' ``stage`` column, messages).
        shard: shard name.
        rows: the shard's input rows.
        input_schema: their Arrow schema (for the output schema).
        completions: cache key → completion; must hold every request of the shard.
        identity: model and sampling the completions were generated with.
        source: the input file, recorded in rejects.

    Raises:
        KeyError: a request has no completion (the engine dropped it: an infrastructure fault).
    """
    started = time.time()
    require_columns(stage, input_schema.names, task.input_columns)
    schema = output_schema_with_gen(task, input_schema)
    out_rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    n_units = 0
    plan = plan_requests(task, rows, identity, shard)
    by_unit: dict[str, list[str]] = {}
    for req in plan:
        by_unit.setdefault(req["unit_id"], []).append(req["key"])
    seen_units: set[str] = set()
    for row in rows:
        for unit in task.expand(row):
            unit_id = task.unit_id(unit)
            if unit_id in seen_units:  # the same content twice in one shard: one unit, counted once
                counters["duplicate_units"] += 1
                continue
            seen_units.add(unit_id)
            n_units += 1
            keys = by_unit.get(unit_id, [])
            missing = [k for k in keys if k not in completions]
            if missing:
                raise KeyError(
                    f"[{stage}] shard {shard}: unit {unit_id} has no completion for {len(missing)} request(s) "
                    f"(first key {missing[0]}); the engine returned fewer rows than it was given. Rerun the "
                    "stage: finished completions are cached and only the missing ones are generated."
                )
            comps = [completions[k] for k in keys]
            for c in comps:
                counters["prompt_tokens"] += c.prompt_tokens
                counters["completion_tokens"] += c.completion_tokens
                counters[f"finish_{c.finish_reason}"] += 1
            result = _decide(task, unit, comps)
            if isinstance(result, Reject):
                reasons[result.reason] += 1
                rejects.append(
                    {
                        "input_id": unit_id,
                        "stage": stage,
                        "reason": result.reason,
                        "detail": result.detail,
                        "source": source,
                        "raw": result.raw,
                    }
                )
                continue
            gen = provenance(comps) if comps else None
            for out in result:
                out.setdefault("gen", gen)
                out_rows.append(out)
    counters["requests"] = len(plan)
    counters["input_rows"] = len(rows)
    shard_result = ShardResult(
        shard=shard,
        in_rows=n_units,
        out_rows=len(out_rows),
        passed=n_units - sum(reasons.values()),
        rejected=dict(reasons),
        counters={k: float(v) for k, v in counters.items()},
        seconds=round(time.time() - started, 3),
    )
    try:
        data = pa.Table.from_pylist(out_rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise TypeError(
            f"[{stage}] {type(task).__name__}.parse returned rows that do not fit its output_schema: {exc}"
        ) from exc
    return shard_result, data, make_rejects(rejects)


def _decide(task: LLMTask, unit: Mapping[str, Any], comps: Sequence[Completion]) -> list[dict] | Reject:
    failed = [c for c in comps if c.failed]
    if failed:
        return Reject(ENGINE_ERROR, failed[0].error or "engine error", None)
    truncated = [c for c in comps if c.truncated]
    if truncated and task.on_truncated == "reject":
        c = truncated[0]
        return Reject(
            TRUNCATED,
            f"output cut off at {c.completion_tokens} tokens (finish_reason=length); raise "
            "sampling.max_tokens or engine.max_model_len to keep such rows",
            c.text,
        )
    result = task.parse(unit, comps)
    if isinstance(result, Reject):
        return result
    if not result:
        return Reject(
            NO_OUTPUT, f"{type(task).__name__}.parse returned no rows", comps[0].text if comps else None
        )
    return [dict(r) for r in result]
