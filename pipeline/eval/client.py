"""Completion requests to an OpenAI-compatible endpoint, with retries and a resumable response cache.

- :func:`request_key`: the cache key, a hash of (model, prompt, sampling parameters): the same
  request is never sent twice, whichever benchmark, option order or run asks for it.
- :class:`ResponseCache`: a folder of append-only JSON-lines files, one per writer (one per run of
  the driver, which receives every response from the request actors, so the cache lives in one
  place whatever node the actors run on). Every response is flushed as soon as it arrives, so a
  killed run loses at most the requests in flight; a torn last line is ignored when reading. (The LLM stages' parquet cache flushes in parts of hundreds of rows,
  which suits batch generation but would repeat up to a part's worth of long evaluation
  answers after a kill.)
- :class:`CompletionClient`: ``POST /v1/completions`` with the raw rendered prompt (so the server
  cannot re-template it); 408/429/5xx, timeouts and connection errors are retried with
  exponential back-off and jitter; other 4xx answers (prompt too long, bad parameters) are final
  and cached as errors, so a resumed run does not resend them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def request_key(model: str, prompt: str, sampling: dict[str, Any]) -> str:
    payload = json.dumps(
        {"model": model, "prompt": prompt, "sampling": sampling}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


class ResponseCache:
    """``<dir>/<writer>.jsonl`` files of ``{key, text, finish_reason, …}`` records."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def records(self) -> Iterator[dict[str, Any]]:
        for path in self.files():
            with path.open("r", encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break  # torn write of a killed process
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue

    def load(self) -> dict[str, dict[str, Any]]:
        """Key -> record (the last one wins)."""
        return {r["key"]: r for r in self.records()}

    def writer(self, name: str | None = None) -> CacheWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        return CacheWriter(self.directory / f"{name or uuid.uuid4().hex[:12]}.jsonl")


class CacheWriter:
    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def add(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()  # in the OS now: survives the process being killed

    def close(self) -> None:
        self._file.close()


class RequestRejectedError(RuntimeError):
    """The server answered a final 4xx: the request itself is wrong (recorded, not retried)."""


@dataclass
class CompletionClient:
    """Sends one completion request at a time; see the module docstring for the retry policy."""

    base_url: str  # the server root, e.g. http://127.0.0.1:52311 (routes under /v1)
    api_key: str | None = None
    timeout_s: float = 1800.0
    max_retries: int = 6
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0

    def __post_init__(self) -> None:
        import requests

        self._session = requests.Session()
        self.retries = 0

    def complete(self, model: str, prompt: str, sampling: dict[str, Any]) -> dict[str, Any]:
        """``{response_id, text, finish_reason, prompt_tokens, completion_tokens, attempts, latency_s}``."""
        import requests

        body = {"model": model, "prompt": prompt, **{k: v for k, v in sampling.items() if v is not None}}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/v1/completions"
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            error: str
            try:
                response = self._session.post(url, json=body, headers=headers, timeout=self.timeout_s)
            except (requests.Timeout, requests.ConnectionError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    data = response.json()
                    choice = data["choices"][0]
                    usage = data.get("usage") or {}
                    return {
                        "response_id": data.get("id"),
                        "text": choice.get("text", ""),
                        "finish_reason": choice.get("finish_reason"),
                        "prompt_tokens": usage.get("prompt_tokens"),
                        "completion_tokens": usage.get("completion_tokens"),
                        "attempts": attempt,
                        "latency_s": round(time.perf_counter() - started, 4),
                    }
                if response.status_code not in RETRY_STATUS:
                    raise RequestRejectedError(f"HTTP {response.status_code}: {response.text[:500]}")
                error = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt > self.max_retries:
                raise ConnectionError(f"{url}: gave up after {attempt} attempts; last error: {error}")
            self.retries += 1
            wait = min(self.retry_max_s, self.retry_base_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            time.sleep(wait)


def run_request(client: CompletionClient, request: dict[str, Any]) -> dict[str, Any]:
    """Send one ``{key, model, prompt, sampling}``; returns the record to cache.

    A final rejection becomes ``{error, finish_reason: "error"}`` (deterministic: resending would
    get the same answer, so it is cached); a transient failure that outlived the retries raises,
    so the run fails loudly and a rerun resumes from the cache.
    """
    record: dict[str, Any] = {"key": request["key"], "model": request["model"], "pid": os.getpid()}
    try:
        record.update(client.complete(request["model"], request["prompt"], request["sampling"]))
    except RequestRejectedError as exc:
        record.update({"text": "", "finish_reason": "error", "error": str(exc)})
    return record
