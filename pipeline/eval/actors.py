"""Request actors: a pool of Ray actors sending evaluation requests to the Serve endpoint at once.

This module is the Ray construct of the evaluation (the rest of ``pipeline.eval`` is plain
Python). Each :class:`RequestActor` holds one HTTP session; Ray's
``ActorPool`` hands out one request at a time, so ``concurrency`` requests are in flight and a
slow answer never holds up a batch. The actors only wait on HTTP, so by default they reserve no
CPU (``num_cpus=0``) and never compete with the vLLM replicas for the cluster's CPUs.

Resume: before sending anything, :func:`generate` reads the response cache and sends only the
keys it lacks; every answer is appended to the cache (by this driver process) the moment it comes
back, so a killed run repeats at most the requests that were in flight.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import ray
from ray.util.actor_pool import ActorPool

from pipeline.eval.client import CompletionClient, ResponseCache, run_request

log = logging.getLogger(__name__)


@ray.remote
class RequestActor:
    def __init__(self, base_url: str, api_key: str | None, client_kwargs: dict[str, Any]):
        self.client = CompletionClient(base_url=base_url, api_key=api_key, **client_kwargs)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        return run_request(self.client, request)

    def retries(self) -> int:
        return self.client.retries


def generate(
    requests: list[dict[str, Any]],
    *,
    base_url: str,
    cache_dir: str,
    concurrency: int = 4,
    api_key: str | None = None,
    num_cpus: float = 0.0,
    client_kwargs: dict[str, Any] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Responses for every request key (cached or new) and run statistics.

    ``requests`` are ``{key, model, prompt, sampling}``; duplicates (same key) are sent once.
    Statistics: ``{requested, cached, sent, retries, seconds, items_per_s}``.
    """
    cache = ResponseCache(cache_dir)
    responses = cache.load()
    unique: dict[str, dict[str, Any]] = {}
    for request in requests:
        unique.setdefault(request["key"], request)
    pending = [r for key, r in unique.items() if key not in responses]
    stats: dict[str, Any] = {
        "requested": len(unique),
        "cached": len(unique) - len(pending),
        "sent": 0,
        "retries": 0,
    }
    started = time.time()
    if pending:
        actors = [
            RequestActor.options(num_cpus=num_cpus).remote(base_url, api_key, dict(client_kwargs or {}))
            for _ in range(min(concurrency, len(pending)))
        ]
        writer = cache.writer(f"run-{uuid.uuid4().hex[:12]}")
        pool = ActorPool(actors)
        try:
            for record in pool.map_unordered(lambda actor, request: actor.run.remote(request), pending):
                writer.add(record)
                responses[record["key"]] = record
                stats["sent"] += 1
                if progress:
                    progress(stats["sent"], len(pending), time.time() - started)
            stats["retries"] = sum(ray.get([a.retries.remote() for a in actors]))
        finally:
            writer.close()
            for actor in actors:
                ray.kill(actor)
    stats["seconds"] = round(time.time() - started, 3)
    stats["items_per_s"] = (
        round(stats["sent"] / stats["seconds"], 3) if stats["sent"] and stats["seconds"] else None
    )
    return {key: responses[key] for key in unique}, stats
