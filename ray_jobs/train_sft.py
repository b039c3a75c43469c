"""SFT stage: QA records → a fine-tuned model in Hugging Face format (Ray Data + Ray Train).

Locally (starts or joins a local Ray; tiny random Qwen3 on 2 CPU workers):
    python -m ray_jobs.train_sft --config ray_jobs/configs/sft_tiny_cpu.yaml \
        --set train_sft.data.input=path/to/qa.parquet
On a cluster (the paper's recipe for Qwen3-1.7B-Base on 8 GPUs):
    ray job submit --working-dir . -- python -m ray_jobs.train_sft --config ray_jobs/configs/sft_qwen3_1p7b.yaml

Steps, each resumable:
1. tokenise the input with the chat template into ``<run>/sft_tokenize/`` (one cached shard per
   input slice, rejects with reasons, truncation counts, padding waste with/without packing);
2. train with Ray Train ``TorchTrainer``; checkpoints in ``<run>/train_sft/ray_train/`` (or
   ``checkpointing.storage_path``). A killed job rerun with the same config resumes from the latest
   checkpoint, also on another number of workers;
3. export the final checkpoint to ``<run>/train_sft/model/`` (safetensors, tokenizer, chat template),
   which vLLM and Ray Serve LLM load directly; ``metrics.jsonl`` (every step) and ``loss.png`` beside it.

A finished stage (``<run>/train_sft/_SUCCESS``) is skipped on rerun; ``--force`` retrains from scratch.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.config import to_dict
from pipeline.run_config import RunConfig
from pipeline.rundir import StageDir, filesystem, join
from pipeline.sft.chat import load_sft_tokenizer
from pipeline.sft.config import SftConfig, plan_batches
from pipeline.sft.data import SftTokenizeShard, padding_waste, plan_input_shards, resolve_input_files
from pipeline.sft.metrics import plot_loss, read_jsonl
from ray_jobs.common import begin_stage, connect, finish_stage, map_shards, print_stats, run_main, stage_cli

SECTION = "train_sft"
TOKENIZE_STAGE = "sft_tokenize"
FINGERPRINT_FILE = "fingerprint.json"


def tokenize(config: RunConfig, sft: SftConfig) -> tuple[list[str], dict[str, Any]]:
    """Tokenise (or reuse the cache of) the training data; returns the row files and their stats."""
    stage = config.run_dir.stage(TOKENIZE_STAGE)
    fingerprint = sft.data_fingerprint()
    if stage.completed_fingerprint() == fingerprint:
        stats = stage.read_stats()
        print(f"[{TOKENIZE_STAGE}] reusing {stats['rows']} tokenised rows from {stage.uri}")
        return stage.data_files(), stats
    _claim(stage, fingerprint)
    started = time.time()
    files = resolve_input_files(sft.data, config.run_dir, hf_cache_uri=join(stage.uri, "hf_input"))
    shards = plan_input_shards(files, sft.data.rows_per_shard, sft.data.max_samples)
    done = stage.done_shards()
    pending = [s.to_dict() for s in shards if s.shard not in done]
    print(f"[{TOKENIZE_STAGE}] {len(files)} input files, {len(shards)} shards, {len(pending)} to tokenise")
    map_shards(pending, SftTokenizeShard, {"sft": to_dict(sft), "run_uri": config.run_dir.uri})
    stats = stage.finish(fingerprint, time.time() - started, _length_report(stage, sft))
    print_stats(stats)
    print(
        f"[{TOKENIZE_STAGE}] {stats['rows']} rows from {stats['passed']} conversations, "
        f"{stats['counters'].get('truncated', 0):g} cut at {sft.recipe.max_length} tokens; padding waste "
        f"{stats['padding_waste']['unpacked']:.1%} unpacked"
        + (f", {stats['padding_waste']['packed']:.1%} packed" if sft.recipe.packing else "")
    )
    return stage.data_files(), stats


def _claim(stage: StageDir, fingerprint: str) -> None:
    """Start the cache afresh when what is there was made with other data/tokenizer settings."""
    path = join(stage.path, FINGERPRINT_FILE)
    info = stage.fs.get_file_info(path)
    if info.type != pafs.FileType.NotFound:
        with stage.fs.open_input_stream(path) as f:
            if json.loads(f.read()).get("fingerprint") == fingerprint:
                return
        print(f"[{TOKENIZE_STAGE}] data or tokenizer settings changed: re-tokenising into {stage.uri}")
    stage.reset()
    stage.fs.create_dir(stage.path, recursive=True)
    with stage.fs.open_output_stream(path) as f:
        f.write(json.dumps({"fingerprint": fingerprint}).encode())


def _length_report(stage: StageDir, sft: SftConfig) -> dict[str, Any]:
    """Row and conversation counts and padding waste with and without packing (stats.json)."""
    lengths = [
        pq.read_table(f, columns=["n_tokens", "seq_lens"], filesystem=stage.fs) for f in stage.data_files()
    ]
    row_lengths = [n for t in lengths for n in t.column("n_tokens").to_pylist()]
    conv_lengths = [n for t in lengths for n in pc.list_flatten(t.column("seq_lens")).to_pylist()]
    micro = plan_batches(
        sft.recipe.global_batch_size, sft.parallelism.num_workers, sft.recipe.micro_batch_size
    ).micro_batch_size
    return {
        "rows": len(row_lengths),
        "conversations": len(conv_lengths),
        "max_length": sft.recipe.max_length,
        "packing": sft.recipe.packing,
        "mean_conversation_tokens": sum(conv_lengths) / max(len(conv_lengths), 1),
        "padding_waste": {
            "micro_batch_size": micro,
            "unpacked": padding_waste(conv_lengths, micro),
            "packed": padding_waste(row_lengths, micro) if sft.recipe.packing else None,
        },
    }


def _checkpoint_uri(checkpoint: Any) -> str:
    fs = checkpoint.filesystem
    if fs is None or isinstance(fs, pafs.LocalFileSystem):
        return checkpoint.path
    return f"{fs.type_name}://{checkpoint.path}"


def run(config: RunConfig, force: bool = False) -> dict[str, Any]:
    stage = begin_stage(config, SECTION, force)
    if stage is None:
        return config.run_dir.stage(SECTION).read_stats()
    import ray
    from ray.train import TrainingFailedError

    from pipeline.sft.export import export_hf_model
    from pipeline.sft.ray_train import fit, total_steps

    started = time.time()
    sft: SftConfig = config.stage(SECTION)
    files, token_stats = tokenize(config, sft)
    num_rows = int(token_stats["rows"])
    steps = total_steps(sft, num_rows)  # fails before the cluster is asked for workers
    tokenizer = load_sft_tokenizer(sft.tokenizer_name, sft.model.chat_template)
    storage = sft.checkpointing.storage_path or stage.uri
    metrics_uri = join(stage.uri, "metrics.jsonl")
    print(f"[{SECTION}] training {sft.model.name_or_path} for {steps} steps; run state in {storage}")
    try:
        result = fit(sft, files, num_rows, storage, metrics_uri, config.run.name, tokenizer.pad_token_id)
    except TrainingFailedError as exc:
        raise RuntimeError(
            f"[{SECTION}] training failed ({type(exc).__name__}); rerun the same command to resume from "
            f"the latest checkpoint in {storage}"
        ) from exc
    if result.checkpoint is None:
        raise RuntimeError(f"[{SECTION}] training ended without a checkpoint in {storage}")

    model_uri = join(stage.uri, "model")
    checkpoint_uri = _checkpoint_uri(result.checkpoint)
    print(f"[{SECTION}] exporting {checkpoint_uri} → {model_uri}")
    export = ray.remote(num_cpus=1)(export_hf_model)
    ray.get(export.remote(sft, checkpoint_uri, model_uri))

    records = read_jsonl(metrics_uri)
    png_uri = join(stage.uri, "loss.png")
    _write_plot(records, png_uri, f"SFT loss: {sft.model.name_or_path} ({config.run.name})")
    last = records[-1] if records else {}
    summary = {
        "in": num_rows,
        "passed": num_rows,
        "out": num_rows,
        "steps": last.get("step", 0),
        "final_loss": last.get("loss"),
        "first_loss": records[0]["loss"] if records else None,
        "tokens_trained": int(sum(r["tokens"] for r in records)),
        "attempts": int(last.get("attempt", 0)) + 1,
        "model": model_uri,
        "checkpoint": checkpoint_uri,
        "metrics": metrics_uri,
        "loss_plot": png_uri,
        "tokenize": {k: token_stats[k] for k in ("rows", "conversations", "padding_waste")},
    }
    return finish_stage(config, SECTION, stage, started, **summary)


def _write_plot(records: list[dict[str, Any]], uri: str, title: str) -> None:
    fs, path = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        plot_loss(records, path, title)
        return
    with tempfile.TemporaryDirectory() as scratch:
        local = plot_loss(records, os.path.join(scratch, "loss.png"), title)
        with open(local, "rb") as src, fs.open_output_stream(path) as dst:
            dst.write(src.read())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, config = stage_cli(__doc__.splitlines()[0], argv)
    connect(config, args.address)
    return run(config, force=args.force)


if __name__ == "__main__":
    run_main(main)
