"""SFT training throughput on Ray Train vs a bare PyTorch loop, and padding waste with packing.

Three measurements, side by side in one process:

1. **Ray Train, 1 worker vs a bare loop.** Both run the same model (the built-in tiny Qwen3 with the
   real 151k-token vocabulary), the same tokenised rows, the same micro-batch/accumulation plan and
   the same step function (``pipeline.sft.ray_train.train_step``) on one CPU thread, over the same
   micro-batches in the same order (the bare loop gets the Ray side's shuffled rows up front, in a
   fresh process); the Ray side is the real stage: Ray Data ``streaming_split`` → ``TorchTrainer``
   worker → metrics. Ratio = the cost of the Ray layer.
   Steady state = tokens / step time over the steps after ``--warmup`` (both sides time the same
   span: fetching the micro-batches + forward/backward + optimizer step); end to end adds Ray's
   start-up (cluster already running), worker start, model load and the final checkpoint.
2. **2 workers vs 1** (DDP over gloo, one thread each): scaling on this machine.
3. **Padding waste at max length 4,096**, with and without packing: QA pairs whose answer lengths
   follow a log-normal with the mean of the paper's data (410 tokens for TextbookReasoning, 721 for
   MegaScience; SPEC-pipeline.md §18) and real textbook text when ``../shared/data`` is present,
   tokenised with the real Qwen tokenizer and chat template, batched 8 at a time as in the paper.

    python bench/train.py                  # about 5 minutes on 2 cores
    python bench/train.py --steps 40 --rows-per-step 16

Prints a table and writes ``bench/results/train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from pipeline.config import from_dict  # noqa: E402
from pipeline.rundir import RunDir  # noqa: E402
from pipeline.sft.chat import build_messages, load_sft_tokenizer, tokenize_conversations  # noqa: E402
from pipeline.sft.config import SftConfig, plan_batches  # noqa: E402
from pipeline.sft.data import SftTokenizeShard, pack_sequences, padding_waste, plan_input_shards  # noqa: E402

SHARED_TEXTBOOKS = (
    Path(os.environ.get("MEGASCIENCE_SHARED_DATA", REPO.parent / "shared" / "data")) / "textbooks"
)
WORDS = [
    "the",
    "energy",
    "of",
    "a",
    "system",
    "is",
    "conserved",
    "when",
    "no",
    "external",
    "work",
    "is",
    "done",
    "on",
    "it",
    "and",
    "the",
    "momentum",
    "of",
    "each",
    "particle",
    "changes",
    "only",
    "through",
    "forces",
    "acting",
    "between",
    "them",
    "so",
    "that",
    "equilibrium",
    "constants",
    "enzymes",
    "catalyse",
    "reactions",
    "by",
    "lowering",
    "activation",
    "barriers",
    "while",
    "cells",
    "regulate",
    "gene",
    "expression",
]


# --- text -----------------------------------------------------------------------------------------
def corpus_words() -> list[str]:
    """Words of real textbook text when the shared data is present, else a short built-in passage."""
    pdfs = sorted(p for p in SHARED_TEXTBOOKS.glob("*.pdf") if not p.name.startswith("SCANNED"))
    if not pdfs:
        return WORDS
    import pymupdf

    words: list[str] = []
    for pdf in pdfs:
        with pymupdf.open(pdf) as doc:
            for page in doc.pages(0, min(40, doc.page_count)):
                words.extend(page.get_text("text").split())
    return words or WORDS


def make_records(n: int, mean_answer_tokens: float, seed: int, words: list[str]) -> list[dict]:
    """QA records with log-normal answer lengths of the given mean (σ = 0.8) and 20–120-word questions."""
    rng = np.random.default_rng(seed)
    sigma = 0.8
    mu = np.log(mean_answer_tokens) - sigma**2 / 2
    records = []
    for i in range(n):
        n_answer_words = max(3, int(rng.lognormal(mu, sigma) / 1.3))  # ~1.3 tokens per English word
        n_question_words = int(rng.integers(20, 120))
        start = int(rng.integers(0, max(1, len(words) - n_answer_words - n_question_words)))
        text = (words * (1 + (start + n_answer_words + n_question_words) // len(words)))[start:]
        records.append(
            {
                "qa_id": f"q{i:06d}",
                "question": " ".join(text[:n_question_words]) + "?",
                "answer": " ".join(text[n_question_words : n_question_words + n_answer_words]),
            }
        )
    return records


# --- 3. padding waste -----------------------------------------------------------------------------
def measure_padding(args: argparse.Namespace, words: list[str]) -> dict:
    tokenizer = load_sft_tokenizer("builtin:qwen3-tokenizer", "builtin:qwen3")
    out = {}
    for name, mean in (("textbookreasoning_410", 410.0), ("megascience_721", 721.0)):
        records = make_records(args.padding_samples, mean, seed=1, words=words)
        convs = []
        for start in range(0, len(records), 256):
            batch = records[start : start + 256]
            convs += tokenize_conversations(
                tokenizer, [build_messages(r["question"], r["answer"]) for r in batch], args.max_length
            )
        lengths = [len(c.input_ids) for c in convs]
        samples = [(str(i), c.input_ids) for i, c in enumerate(convs)]
        packed_rows = pack_sequences(samples, args.max_length)
        packed_lengths = [sum(len(s[1]) for s in row) for row in packed_rows]
        out[name] = {
            "conversations": len(lengths),
            "mean_tokens": float(np.mean(lengths)),
            "truncated": sum(c.truncated for c in convs),
            "rows_packed": len(packed_rows),
            "waste_unpacked": padding_waste(lengths, args.padding_micro_batch),
            "waste_packed": padding_waste(packed_lengths, args.padding_micro_batch),
            "packed_fill": float(np.mean(packed_lengths) / args.max_length),
        }
    return out


# --- 1./2. throughput -----------------------------------------------------------------------------
def bench_config(args: argparse.Namespace, data: str, workers: int) -> SftConfig:
    return from_dict(
        SftConfig,
        {
            "model": {"name_or_path": "builtin:tiny-qwen3", "chat_template": "builtin:qwen3"},
            "data": {"input": data},
            "recipe": {
                "learning_rate": 1e-3,
                "num_epochs": 1,
                "global_batch_size": args.rows_per_step,
                "micro_batch_size": args.micro_batch,
                "max_length": args.seq_len,
                "max_steps": args.steps,
            },
            "parallelism": {"num_workers": workers, "cpus_per_worker": 1},
            "checkpointing": {
                "every_n_steps": 10**6,
                "each_epoch": False,
                "num_to_keep": 1,
                "max_failures": 0,
            },
            "logging": {"flush_every_s": 10**6, "log_every_steps": 10},
        },
    )


def tokenize_rows(sft: SftConfig, run: RunDir, data: str) -> tuple[list[str], int]:
    worker = SftTokenizeShard(sft, run.uri)
    for shard in plan_input_shards([data], rows_per_shard=10**6):
        worker(shard.to_dict())
    stage = run.stage("sft_tokenize")
    files = stage.data_files()
    return files, sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def steady_summary(records: list[dict], warmup: int) -> dict:
    """Steady-state rate, and how the step time splits into waiting for data and compute."""
    timed = [r for r in records if r["step"] > warmup]
    step = sum(r["step_time_s"] for r in timed)
    wait = sum(r.get("data_wait_s", 0.0) for r in timed)
    tokens = sum(r["tokens"] for r in timed)
    return {
        "steady_tokens_per_s": tokens / step,
        "compute_tokens_per_s": tokens / (step - wait),
        "data_wait_share": wait / step,
    }


def epoch_rows(sft: SftConfig, files: list[str]) -> pa.Table:
    """The rows in the order Ray Train's single worker sees them (same shuffle, same seed), so the
    bare loop trains on exactly the same micro-batches (the same padding, hence the same work)."""
    from pipeline.sft.ray_train import build_epoch_datasets

    dataset = build_epoch_datasets(files, 1, sft.recipe.seed)["epoch_0"]
    dataset.context.execution_options.preserve_order = True
    return pa.Table.from_pylist(dataset.take_all())


def bare_loop(sft: SftConfig, table: pa.Table, warmup: int) -> dict:
    """The same model, data, plan and step function in a plain process: no Ray, no process group."""
    import torch

    from pipeline.sft.data import collate
    from pipeline.sft.ray_train import build_model, build_optimizer, build_scheduler, train_step

    torch.set_num_threads(1)
    started = time.time()
    plan = plan_batches(sft.recipe.global_batch_size, 1, sft.recipe.micro_batch_size)
    torch.manual_seed(sft.recipe.seed)
    model, _ = build_model(sft, torch.device("cpu"), world_size=1)
    optimizer = build_optimizer(sft, model)
    scheduler = build_scheduler(sft, optimizer, sft.recipe.max_steps)
    tokenizer_pad = load_sft_tokenizer(sft.tokenizer_name, sft.model.chat_template).pad_token_id
    records = []
    row = 0
    for step in range(1, sft.recipe.max_steps + 1):
        step_started = time.time()
        micro = []
        for _ in range(plan.grad_accum_steps):
            chunk = table.slice(row, plan.micro_batch_size).to_pydict()
            row += plan.micro_batch_size
            batch = {k: np.array([np.asarray(v) for v in vals], dtype=object) for k, vals in chunk.items()}
            micro.append(collate(batch, tokenizer_pad))
        data_seconds = time.time() - step_started
        result = train_step(
            model, optimizer, scheduler, micro, torch.device("cpu"), 1, sft.recipe.max_grad_norm
        )
        records.append(
            {
                "step": step,
                "tokens": result["local_tokens"],
                "step_time_s": time.time() - step_started,
                "data_wait_s": data_seconds,
            }
        )
    return {
        **steady_summary(records, warmup),
        "end_to_end_s": time.time() - started,
        "tokens": sum(r["tokens"] for r in records),
    }


def in_fresh_process(fn, *args):
    """Run ``fn`` in a new interpreter, like a Ray worker: this process holds the padding
    benchmark's millions of Python objects, whose garbage collection would slow a loop run here."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def ray_loop(sft: SftConfig, files: list[str], num_rows: int, storage: str, warmup: int) -> dict:
    from pipeline.sft.metrics import read_jsonl
    from pipeline.sft.ray_train import fit

    metrics_uri = os.path.join(storage, "metrics.jsonl")
    started = time.time()
    pad = load_sft_tokenizer(sft.tokenizer_name, sft.model.chat_template).pad_token_id
    fit(sft, files, num_rows, storage, metrics_uri, f"bench-{sft.parallelism.num_workers}w", pad)
    elapsed = time.time() - started
    records = read_jsonl(metrics_uri)
    return {
        **steady_summary(records, warmup),
        "end_to_end_s": elapsed,
        "tokens": sum(r["tokens"] for r in records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the steady-state rate")
    parser.add_argument("--rows-per-step", type=int, default=8, help="global batch (sequences)")
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256, help="max length of the throughput rows")
    parser.add_argument("--max-length", type=int, default=4096, help="max length for the padding figures")
    parser.add_argument("--padding-samples", type=int, default=4000)
    parser.add_argument("--padding-micro-batch", type=int, default=8)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-padding", action="store_true")
    args = parser.parse_args()

    results: dict = {"args": vars(args)}
    words = corpus_words()
    print(f"text: {'real textbooks' if words is not WORDS else 'built-in passage'} ({len(words):,} words)")
    if not args.skip_padding:
        results["padding"] = measure_padding(args, words)

    if not args.skip_throughput:
        import ray

        scratch = tempfile.mkdtemp(prefix="sft-bench-")
        data = os.path.join(scratch, "qa.parquet")
        n = args.rows_per_step * (args.steps + 2)
        pq.write_table(pa.Table.from_pylist(make_records(n, 120.0, seed=2, words=words)), data)
        one = bench_config(args, data, 1)
        files, num_rows = tokenize_rows(one, RunDir(scratch, "tok"), data)
        ray_temp = tempfile.mkdtemp(prefix="ray_b", dir="/tmp")  # short: Ray's socket paths are limited
        ray.init(num_cpus=4, include_dashboard=False, _temp_dir=ray_temp)
        try:
            rows = epoch_rows(one, files)
            results["bare_1"] = in_fresh_process(bare_loop, one, rows, args.warmup)
            results["ray_1"] = ray_loop(one, files, num_rows, os.path.join(scratch, "ray1"), args.warmup)
            results["ray_2"] = ray_loop(
                bench_config(args, data, 2), files, num_rows, os.path.join(scratch, "ray2"), args.warmup
            )
            # drift check on a shared machine
            results["bare_1_again"] = in_fresh_process(bare_loop, one, rows, args.warmup)
        finally:
            ray.shutdown()
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(ray_temp, ignore_errors=True)

    print_table(results)
    out = REPO / "bench" / "results" / "train.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


def print_table(results: dict) -> None:
    print("\npadding waste (share of padded positions), micro-batch", results["args"]["padding_micro_batch"],
          "max length", results["args"]["max_length"])  # fmt: skip
    for name, r in results.get("padding", {}).items():
        print(
            f"  {name:24s} mean {r['mean_tokens']:7.1f} tok  unpacked {r['waste_unpacked']:6.1%}  "
            f"packed {r['waste_packed']:6.1%} (goal <= 5%)  rows {r['conversations']} -> {r['rows_packed']}"
        )
    if "ray_1" not in results:
        return
    bare = statistics.mean(
        [results["bare_1"]["steady_tokens_per_s"], results["bare_1_again"]["steady_tokens_per_s"]]
    )
    print("\nthroughput, tiny Qwen3 (151k vocab), tokens/s steady state (end-to-end seconds)")
    for key in ("bare_1", "ray_1", "ray_2", "bare_1_again"):
        r = results[key]
        print(
            f"  {key:14s} {r['steady_tokens_per_s']:10,.0f} tok/s   ({r['end_to_end_s']:.1f} s)   "
            f"data wait {r['data_wait_share']:5.1%}, compute only {r['compute_tokens_per_s']:,.0f} tok/s"
        )
    ray1 = results["ray_1"]["steady_tokens_per_s"]
    print(f"  Ray Train 1 worker / bare loop: {ray1 / bare:.2f}x (goal >= 0.85x)")
    print(f"  Ray Train 2 workers / 1 worker: {results['ray_2']['steady_tokens_per_s'] / ray1:.2f}x")
    results["ratios"] = {
        "ray1_over_bare": ray1 / bare,
        "ray2_over_ray1": results["ray_2"]["steady_tokens_per_s"] / ray1,
    }


if __name__ == "__main__":
    main()
