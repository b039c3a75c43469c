"""The evaluation stage as plain functions: plan units → requests → (engine) → score → predictions.

``ray_jobs/evaluate.py`` wires these to the Serve endpoint through the request actors; tests and
notebooks can pass any ``generate`` function (``requests -> {key: response}``).

A *unit* is one item in one option order (``<item_id>@reference`` / ``@shuffled``); its request
is keyed by (model, rendered prompt, sampling), so units that render the same prompt (every
non-multiple-choice item in both orders) share one request.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.benchmarks import BenchmarkItem, MissingBenchmark, registry
from pipeline.eval.client import request_key
from pipeline.eval.config import EvalConfig
from pipeline.eval.prompts import PresentedItem, present, render_chat, stop_token_ids_for, user_prompt
from pipeline.eval.scoring import ScoringPool, failed_score

log = logging.getLogger(__name__)

PREDICTION_SCHEMA = pa.schema(
    [
        ("benchmark", pa.string()),
        ("subtask", pa.string()),
        ("item_id", pa.string()),
        ("option_order", pa.string()),
        ("prompt", pa.string()),
        ("output", pa.string()),
        ("extracted", pa.string()),  # JSON: a letter, "placeholder", a list of answers, a number, null
        ("extracted_flexible", pa.string()),
        ("gold", pa.string()),
        ("correct", pa.bool_()),
        ("correct_flexible", pa.bool_()),
        ("extraction_failed", pa.bool_()),
        ("timed_out", pa.bool_()),
        ("error", pa.string()),
        ("finish_reason", pa.string()),
        ("completion_tokens", pa.int64()),
        ("request_key", pa.string()),
    ]
)


@dataclass(frozen=True)
class EvalUnit:
    presented: PresentedItem
    prompt: str
    key: str

    @property
    def benchmark(self) -> str:
        return self.presented.item.benchmark


def sampling_params(config: EvalConfig) -> dict[str, Any]:
    s = config.sampling
    stop = (
        list(s.stop_token_ids)
        if s.stop_token_ids is not None
        else stop_token_ids_for(config.model_path or config.tokenizer)
    )
    return {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "stop_token_ids": stop,
        "n": 1,
    }


def load_items(config: EvalConfig) -> tuple[dict[str, list[BenchmarkItem]], list[MissingBenchmark]]:
    """Items of the benchmarks whose data is present; the rest listed as missing."""
    present_names, missing = registry.availability(
        config.data_dir, list(config.benchmarks), source=config.source
    )
    items = {
        name: registry.load(name, config.data_dir, source=config.source, limit=config.limit)
        for name in present_names
    }
    for m in missing:
        log.warning("benchmark data missing: %s", m.message())
    return items, missing


def plan_units(items: dict[str, list[BenchmarkItem]], config: EvalConfig, tokenizer: Any) -> list[EvalUnit]:
    """Every (item, option order) with its rendered prompt and request key."""
    sampling = sampling_params(config)
    units: list[EvalUnit] = []
    rendered: dict[str, str] = {}
    for name in config.benchmarks:
        for item in items.get(name, []):
            for order in config.option_orders:
                presented = present(item, order, config.shuffle_seed)
                text = user_prompt(presented)
                if text not in rendered:
                    rendered[text] = render_chat(tokenizer, text, config.enable_thinking)
                prompt = rendered[text]
                units.append(EvalUnit(presented, prompt, request_key(config.model, prompt, sampling)))
    return units


def build_requests(units: list[EvalUnit], config: EvalConfig) -> list[dict[str, Any]]:
    sampling = sampling_params(config)
    seen: set[str] = set()
    out = []
    for unit in units:
        if unit.key not in seen:
            seen.add(unit.key)
            out.append({"key": unit.key, "model": config.model, "prompt": unit.prompt, "sampling": sampling})
    return out


def score_units(
    units: list[EvalUnit], responses: dict[str, dict[str, Any]], pool: ScoringPool
) -> list[dict[str, Any]]:
    """One prediction row per unit (PREDICTION_SCHEMA). A unit whose request failed is wrong, with its error."""
    jobs, slots = [], []
    scores: list[dict[str, Any] | None] = [None] * len(units)
    for i, unit in enumerate(units):
        response = responses.get(unit.key)
        if response is None:
            scores[i] = failed_score("no response (request not sent or failed)")
        elif response.get("finish_reason") == "error":
            scores[i] = failed_score(response.get("error") or "request rejected")
        else:
            jobs.append((unit.presented.scoring_unit(), response.get("text", "")))
            slots.append(i)
    for i, score in zip(slots, pool.map(jobs)):
        scores[i] = score
    rows = []
    for unit, score in zip(units, scores):
        assert score is not None
        response = responses.get(unit.key) or {}
        item = unit.presented.item
        rows.append(
            {
                "benchmark": item.benchmark,
                "subtask": item.subtask,
                "item_id": item.item_id,
                "option_order": unit.presented.option_order,
                "prompt": unit.prompt,
                "output": response.get("text"),
                "extracted": json.dumps(score["extracted"], ensure_ascii=False),
                "extracted_flexible": json.dumps(score["extracted_flexible"], ensure_ascii=False),
                "gold": unit.presented.gold,
                "correct": bool(score["correct"]),
                "correct_flexible": bool(score["correct_flexible"]),
                "extraction_failed": bool(score["extraction_failed"]),
                "timed_out": bool(score["timed_out"]),
                "error": score["error"],
                "finish_reason": response.get("finish_reason"),
                "completion_tokens": response.get("completion_tokens"),
                "request_key": unit.key,
            }
        )
    return rows


def predictions_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA)


def write_jsonl(rows: list[dict[str, Any]], path: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def subtask_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (subtask, option order): items, strict and flexible accuracy, failure counts."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["benchmark"], row["subtask"], row["option_order"]), []).append(row)
    out = []
    for (benchmark, subtask, order), group in groups.items():
        n = len(group)
        reasons = Counter("request_error" if r["error"] and not r["timed_out"] else None for r in group)
        out.append(
            {
                "benchmark": benchmark,
                "subtask": subtask,
                "option_order": order,
                "n": n,
                "accuracy": 100.0 * sum(r["correct"] for r in group) / n,
                "accuracy_flexible": 100.0 * sum(r["correct_flexible"] for r in group) / n,
                "extraction_failures": sum(r["extraction_failed"] for r in group),
                "timeouts": sum(r["timed_out"] for r in group),
                "request_errors": reasons.get("request_error", 0),
                "truncated": sum(r["finish_reason"] == "length" for r in group),
            }
        )
    return out
