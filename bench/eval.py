"""Evaluation throughput and Serve overhead, measured side by side in one run.

1. items/s with 1, 4 and 8 concurrent request actors against the same Ray Serve LLM endpoint
   (goal: 8 actors >= 4x one actor): real benchmark prompts, a fresh response cache per setting.
2. p50 latency of the same requests, one at a time, through Serve (HTTP -> proxy -> ingress ->
   LLMServer -> vLLM) and with the same vLLM engine class Serve LLM wraps (``AsyncLLM``) called
   directly in-process (goal: Serve <= 1.2x direct). The two never run at once: Serve is shut
   down before the direct engine starts.
3. For context, the direct engine's items/s one request at a time and with every request at once:
   the most any number of actors can gain on this machine.

    python bench/eval.py                      # tiny random Qwen3 on vLLM CPU (about 10 minutes on 2 cores)
    python bench/eval.py --model Qwen/Qwen3-1.7B --device gpu --max-tokens 256 --items 256

Figures go to stdout and bench/results/eval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("gpqa_diamond", "medqa", "medmcqa", "cs_bench", "piqa", "gsm8k", "math500", "scibench")


def build_requests(model_dir: str, items_per_benchmark: int, max_tokens: int, data_dir: str) -> list[dict]:
    from transformers import AutoTokenizer

    from pipeline.eval import runner
    from pipeline.eval.config import EvalConfig, EvalSamplingConfig

    config = EvalConfig(
        benchmarks=BENCHMARKS, data_dir=data_dir, limit=items_per_benchmark, model="bench", tokenizer=model_dir,
        sampling=EvalSamplingConfig(max_tokens=max_tokens), option_orders=("reference",),
    )  # fmt: skip
    items, _ = runner.load_items(config)
    units = runner.plan_units(items, config, AutoTokenizer.from_pretrained(model_dir))
    requests = runner.build_requests(units, config)
    for r in requests:  # fixed-length answers: the comparison is about serving, not about when EOS comes
        r["sampling"] = {**r["sampling"], "ignore_eos": True}
    return requests


def _replica_call_seconds(response_ids: list[str]) -> list[float]:
    """How long the LLMServer replica spent on each request (its access log's ``CALL completions OK``
    line, matched by request id): the engine's share of the same requests, measured at the same time."""
    import re

    import ray

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    wanted = {rid.split("-", 1)[1]: None for rid in response_ids if rid and "-" in rid}
    line = re.compile(r" ([0-9a-f-]{36}) -- CALL completions OK ([0-9.]+)ms")
    # Serve LLM's replica writes its access lines to the worker's stderr file (serve/ has the rest).
    for path in [*logs.glob("serve/replica_*LLMServer*.log"), *logs.glob("worker-*.err")]:
        for match in line.finditer(path.read_text(errors="ignore")):
            if match.group(1) in wanted:
                wanted[match.group(1)] = float(match.group(2)) / 1000
    return [v for v in wanted.values() if v is not None]


def bench_serve(args: argparse.Namespace, model_dir: str, requests: list[dict]) -> dict:
    import ray
    from ray import serve

    from pipeline.eval.actors import generate
    from pipeline.eval.client import CompletionClient
    from pipeline.serve import app as serve_app
    from pipeline.serve.config import ServeConfig, ServedModel

    ray.init(
        num_cpus=args.num_cpus,
        include_dashboard=False,
        _temp_dir=tempfile.mkdtemp(prefix="ray_b", dir="/tmp"),
    )
    config = ServeConfig(
        app_name="bench-eval",
        models=(ServedModel(model_id="bench", model_source=model_dir, max_model_len=args.max_model_len,
                            max_num_seqs=args.max_num_seqs, dtype=args.dtype, device=args.device),),
    )  # fmt: skip
    started = time.time()
    endpoint = serve_app.deploy(config)
    out: dict = {"serve_ready_s": round(time.time() - started, 1), "throughput": {}}
    try:
        client = CompletionClient(base_url=endpoint.base_url)
        for r in requests[:3]:  # warm-up
            client.complete(r["model"], r["prompt"], r["sampling"])
        for actors in (1, 4, 8):
            with tempfile.TemporaryDirectory() as cache:
                _, stats = generate(requests, base_url=endpoint.base_url, cache_dir=cache, concurrency=actors)
            out["throughput"][actors] = {
                "items_per_s": round(stats["sent"] / stats["seconds"], 3),
                "seconds": stats["seconds"],
            }
            print(
                f"[bench] {actors} actor(s): {out['throughput'][actors]['items_per_s']:.2f} items/s",
                flush=True,
            )
        latencies, ids = [], []
        for r in requests[: args.latency_requests]:
            t0 = time.perf_counter()
            ids.append(client.complete(r["model"], r["prompt"], r["sampling"])["response_id"])
            latencies.append(time.perf_counter() - t0)
        out["serve_latency_s"] = latencies
        time.sleep(2)  # let the replicas flush their access logs
        out["engine_in_replica_s"] = _replica_call_seconds(ids)
    finally:
        serve_app.teardown(endpoint)
        serve.shutdown()
        ray.shutdown()
    return out


def _sampling_params(request: dict):
    from vllm import SamplingParams

    s = request["sampling"]
    return SamplingParams(
        temperature=s["temperature"], top_p=s["top_p"], max_tokens=s["max_tokens"], seed=s["seed"],
        stop_token_ids=s["stop_token_ids"], ignore_eos=True,
    )  # fmt: skip


def bench_direct(args: argparse.Namespace, model_dir: str, requests: list[dict]) -> tuple[list[float], float]:
    """The engine Ray Serve LLM wraps (vLLM's AsyncLLM), called in-process: same requests, no Serve."""
    import asyncio

    from vllm import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    kwargs = {
        "model": model_dir,
        "dtype": args.dtype,
        "max_model_len": args.max_model_len,
        "max_num_seqs": args.max_num_seqs,
    }
    if args.device == "cpu":
        kwargs["enforce_eager"] = True
    engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))

    async def one(request: dict, request_id: str) -> float:
        t0 = time.perf_counter()
        async for _ in engine.generate(request["prompt"], _sampling_params(request), request_id):
            pass
        return time.perf_counter() - t0

    async def run() -> tuple[list[float], float]:
        latencies = []
        for i, r in enumerate(requests[: args.latency_requests + 3]):
            latency = await one(r, f"seq-{i}")
            if i >= 3:  # the first three warm up, as on the Serve side
                latencies.append(latency)
        # The engine's own batching headroom here: every request at once (max_num_seqs decoded together).
        t0 = time.perf_counter()
        await asyncio.gather(*(one(r, f"all-{i}") for i, r in enumerate(requests)))
        return latencies, len(requests) / (time.perf_counter() - t0)

    try:
        return asyncio.run(run())
    finally:
        engine.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny-qwen3")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--items", type=int, default=6, help="items per benchmark (8 benchmarks)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--max-num-seqs", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=24)
    parser.add_argument("--num-cpus", type=int, default=4)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "benchmarks"))
    args = parser.parse_args()

    from pipeline import assets

    model_dir = assets.resolve(args.model)
    requests = build_requests(model_dir, args.items, args.max_tokens, args.data_dir)
    print(f"[bench] {len(requests)} requests, max_tokens={args.max_tokens}, model={args.model}", flush=True)
    serve_out = bench_serve(args, model_dir, requests)
    direct, direct_batched = bench_direct(args, model_dir, requests)
    serve_p50 = statistics.median(serve_out.pop("serve_latency_s"))
    in_replica = serve_out.pop("engine_in_replica_s")
    in_replica_p50 = statistics.median(in_replica) if in_replica else None
    direct_p50 = statistics.median(direct)
    t = serve_out["throughput"]
    result = {
        "model": args.model,
        "device": args.device,
        "requests": len(requests),
        "max_tokens": args.max_tokens,
        **serve_out,
        "speedup_4_vs_1": round(t[4]["items_per_s"] / t[1]["items_per_s"], 2),
        "speedup_8_vs_1": round(t[8]["items_per_s"] / t[1]["items_per_s"], 2),
        "p50_serve_s": round(serve_p50, 4),
        "p50_direct_s": round(direct_p50, 4),
        "p50_ratio_serve_vs_direct": round(serve_p50 / direct_p50, 3),
        "p50_engine_in_replica_s": round(in_replica_p50, 4) if in_replica_p50 else None,
        "p50_ratio_serve_vs_engine_same_requests": round(serve_p50 / in_replica_p50, 3)
        if in_replica_p50
        else None,
        "direct_sequential_items_per_s": round(1 / statistics.mean(direct), 3),
        "direct_batched_items_per_s": round(direct_batched, 3),
    }
    print(
        f"\nitems/s  1 actor: {t[1]['items_per_s']:.2f}   4 actors: {t[4]['items_per_s']:.2f} "
        f"({result['speedup_4_vs_1']}x)   8 actors: {t[8]['items_per_s']:.2f} ({result['speedup_8_vs_1']}x; goal >= 4x)\n"
        f"p50 latency  Serve: {serve_p50 * 1000:.0f} ms   vLLM direct: {direct_p50 * 1000:.0f} ms   "
        f"ratio {result['p50_ratio_serve_vs_direct']}x (goal <= 1.2x; separate phases, machine load differs)\n"
        f"same requests, same moment: client p50 {serve_p50 * 1000:.0f} ms vs the engine's time inside the "
        f"LLMServer replica p50 {(in_replica_p50 or 0) * 1000:.0f} ms: Serve adds "
        f"{result['p50_ratio_serve_vs_engine_same_requests']}x\n"
        f"vLLM direct, same requests: one at a time {result['direct_sequential_items_per_s']:.2f} items/s, "
        f"all at once {result['direct_batched_items_per_s']:.2f} items/s (the engine's batching headroom here)"
    )
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
