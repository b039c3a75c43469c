"""Request client (retries with back-off, final 4xx), response cache (torn writes) and the scoring pool.

The retry test talks real HTTP to a small local server that answers 503 on purpose: a fake of
an overloaded server, which the real Serve app does not produce on demand. The Serve path itself
is covered in tests/pipeline/serve.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from pipeline.eval.client import (
    CompletionClient,
    RequestRejectedError,
    ResponseCache,
    request_key,
    run_request,
)
from pipeline.eval.scoring import ScoringPool


class _FlakyHandler(BaseHTTPRequestHandler):
    script: ClassVar[list[int]] = []
    seen: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        status = type(self).script.pop(0) if type(self).script else 200
        payload = (
            {
                "choices": [{"text": "Answer: B", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2},
            }
            if status == 200
            else {"error": {"message": f"status {status}"}}
        )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FlakyHandler.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}", _FlakyHandler
    server.shutdown()


def test_retries_with_backoff_on_503_then_succeeds(flaky_server):
    url, handler = flaky_server
    handler.script = [503, 503, 429]
    client = CompletionClient(base_url=url, api_key="k", max_retries=5, retry_base_s=0.05)
    started = time.time()
    out = client.complete("m", "prompt", {"max_tokens": 4, "temperature": 0, "seed": None})
    assert out["text"] == "Answer: B" and out["attempts"] == 4 and client.retries == 3
    assert time.time() - started >= 0.05 * (0.5 + 1 + 2) * 0.5  # exponential back-off actually waited
    assert handler.seen[0] == {
        "model": "m",
        "prompt": "prompt",
        "max_tokens": 4,
        "temperature": 0,
    }  # None dropped


def test_gives_up_after_max_retries_and_final_4xx_is_not_retried(flaky_server):
    url, handler = flaky_server
    handler.script = [503] * 10
    client = CompletionClient(base_url=url, max_retries=2, retry_base_s=0.01)
    with pytest.raises(ConnectionError, match="gave up after 3 attempts"):
        client.complete("m", "p", {})
    handler.script, handler.seen = [400], []
    with pytest.raises(RequestRejectedError, match="HTTP 400"):
        client.complete("m", "p", {})
    assert len(handler.seen) == 1
    handler.script = [400]
    record = run_request(client, {"key": "k1", "model": "m", "prompt": "p", "sampling": {}})
    assert record["finish_reason"] == "error" and "HTTP 400" in record["error"]


def test_response_cache_survives_a_torn_write(tmp_path: Path):
    cache = ResponseCache(tmp_path / "cache")
    writer = cache.writer("a")
    writer.add({"key": "k1", "text": "one"})
    writer.add({"key": "k2", "text": "two"})
    writer.close()
    with (tmp_path / "cache" / "a.jsonl").open("a") as f:
        f.write('{"key": "k3", "te')  # the process died mid-line
    assert set(cache.load()) == {"k1", "k2"}
    assert (
        request_key("m", "p", {"t": 0}) == request_key("m", "p", {"t": 0}) != request_key("m", "p", {"t": 1})
    )


def _sleep_or_echo(job):
    seconds, value = job
    time.sleep(seconds)
    return value


def _explode(job):
    raise ValueError(f"bad {job}")


def test_scoring_pool_times_out_one_item_and_keeps_going():
    with ScoringPool(_sleep_or_echo, workers=2, timeout_s=1.0, on_timeout=lambda: "TIMEOUT") as pool:
        results = pool.map([(0, "a"), (30, "b"), (0, "c"), (0, "d")])
        assert results == ["a", "TIMEOUT", "c", "d"] and pool.timeouts == 1
        assert pool.map([(0, "e")]) == ["e"]  # the replaced worker serves on
    with ScoringPool(
        _explode, workers=1, timeout_s=5, on_error=lambda tb: "ERR" if "bad 1" in tb else tb
    ) as pool:
        assert pool.map([1]) == ["ERR"]


def test_a_pathological_expression_times_out_and_scoring_goes_on():
    # sympy would expand (x+1)^3000 - (x-1)^3000 for minutes; the item is scored 0 and marked.
    unit = {"qtype": "math", "item_id": "x", "subtask": "gsm8k", "question": "q", "options": [], "gold": "2",
            "extraction_letters": "", "solution": None, "meta": {}}  # fmt: skip
    with ScoringPool(workers=1, timeout_s=3.0) as pool:
        slow, fine = pool.map([(unit, "\\boxed{(x+1)^{3000}-(x-1)^{3000}}"), (unit, "so \\boxed{2}")])
    assert slow["timed_out"] and not slow["correct"] and slow["error"] == "timeout"
    assert fine["correct"] and not fine["timed_out"]
