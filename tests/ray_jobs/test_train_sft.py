"""The SFT stage end to end on the session's local Ray: tokenise → Ray Train (2 gloo workers, DDP) →
checkpoints → export → vLLM. The tiny random Qwen3 with the real Qwen tokenizer overfits a few
generated QA pairs; a run killed after a checkpoint resumes and ends with the same weights as an
uninterrupted one; the exported folder loads into the vLLM CPU engine and generates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline import run_config
from pipeline.sft.checkpoint import load_model_weights

pytestmark = pytest.mark.slow

FACTS = [
    ("What is the SI unit of force?", "The newton."),
    ("Which gas do plants take in for photosynthesis?", "Carbon dioxide."),
    ("What carries genetic information in cells?", "DNA carries it."),
    ("What is the pH of pure water at 25 °C?", "It is 7."),
]
STEPS = 8  # 32 rows / global batch 4, one epoch
CHECKPOINT_EVERY = 3


def write_dataset(path: Path) -> Path:
    """32 rows in the final dataset's schema: four short facts repeated, ids unique."""
    rows = [
        {"qa_id": f"qa{i:03d}", "question": q, "answer": a, "subject": "physics", "reference_answer": a}
        for i, (q, a) in enumerate(FACTS * 8)
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def sft_run_config(root: Path, name: str, data: Path) -> run_config.RunConfig:
    return run_config.from_dict(
        {
            "run": {"name": name, "root": str(root)},
            "train_sft": {
                "model": {"name_or_path": "builtin:tiny-qwen3", "chat_template": "builtin:qwen3"},
                "data": {"input": str(data)},
                "recipe": {
                    "learning_rate": 8.0e-3,
                    "num_epochs": 1,
                    "global_batch_size": 4,
                    "micro_batch_size": 1,  # 2 workers × 1 × accumulation 2
                    "max_length": 64,
                    "seed": 7,
                },
                "parallelism": {"num_workers": 2, "cpus_per_worker": 1},
                "checkpointing": {"every_n_steps": CHECKPOINT_EVERY, "num_to_keep": 10, "max_failures": 0},
                "logging": {"flush_every_s": 0, "peak_tflops_per_device": 0.08},
            },
        }
    )


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("sft_data") / "final.parquet")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sft_runs")


@pytest.fixture(scope="module")
def finished_run(ray_cluster, tiny_model_dir: Path, data_file: Path, runs_root: Path):
    from ray_jobs import train_sft

    config = sft_run_config(runs_root, "uninterrupted", data_file)
    stats = train_sft.run(config)
    return config, stats


def stage_dir(config: run_config.RunConfig) -> Path:
    return Path(config.run_dir.uri) / "train_sft"


def read_metrics(config: run_config.RunConfig) -> list[dict]:
    text = (stage_dir(config) / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def checkpoint_weights(directory: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoConfig, AutoModelForCausalLM

    from pipeline import assets

    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(assets.resolve("builtin:tiny-qwen3")))
    load_model_weights(str(directory), model.float())
    return model.state_dict()


def test_loss_falls_metrics_plot_and_export(finished_run) -> None:
    config, stats = finished_run
    records = read_metrics(config)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    first, last = records[0]["loss"], records[-1]["loss"]
    assert first > 10.0  # random init over a 151k vocabulary: about ln(151669) = 11.9
    # Memorising four answers: the mean loss over answer tokens drops by well over 2 nats (the
    # answers become 7x+ more likely) within the 8 steps.
    assert last < first - 2.0, f"loss fell only from {first:.2f} to {last:.2f}"
    assert records[0]["lr"] == 0.0 and records[1]["lr"] == pytest.approx(8e-3)  # 1 warm-up step, then cosine
    assert records[-1]["lr"] < records[1]["lr"]
    for r in records:
        assert r["grad_norm"] > 0 and r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1
        assert r["samples_seen"] == 4 * r["step"] and r["world_size"] == 2
    png = stage_dir(config) / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stats["steps"] == STEPS and stats["in"] == stats["passed"] == 32
    model_dir = stage_dir(config) / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        p.name for p in model_dir.iterdir()
    }
    assert "{% generation %}" in (model_dir / "chat_template.jinja").read_text()
    token_stats = json.loads((Path(config.run_dir.uri) / "sft_tokenize" / "stats.json").read_text())
    assert token_stats["in"] == token_stats["passed"] == 32 and token_stats["counters"]["truncated"] == 0


def test_rerun_of_a_finished_run_does_nothing(finished_run) -> None:
    from ray_jobs import train_sft

    config, stats = finished_run
    checkpoints = sorted(p.name for p in (stage_dir(config) / "ray_train").glob("checkpoint_*"))
    metrics_before = (stage_dir(config) / "metrics.jsonl").read_text()
    started = time.time()
    assert train_sft.run(config) == stats
    assert time.time() - started < 5
    assert sorted(p.name for p in (stage_dir(config) / "ray_train").glob("checkpoint_*")) == checkpoints
    assert (stage_dir(config) / "metrics.jsonl").read_text() == metrics_before


def kill_a_worker_after_first_checkpoint(storage: Path, killed: dict) -> None:
    """Wait for the first checkpoint to be registered, then SIGKILL one Ray Train worker process
    (a descendant of this pytest process, so never anyone else's)."""
    snapshot = storage / "checkpoint_manager_snapshot.json"
    deadline = time.time() + 600
    while time.time() < deadline:
        if snapshot.exists() and "checkpoint_step_" in snapshot.read_text():
            break
        time.sleep(0.05)
    else:
        return
    killed["checkpoints"] = sorted(p.name for p in storage.glob("checkpoint_step_*"))
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(proc.cmdline()):
                os.kill(proc.pid, signal.SIGKILL)
                killed["pid"] = proc.pid
                return
        except psutil.Error:
            continue


def test_killed_run_resumes_from_its_checkpoint_with_the_same_weights(
    finished_run, data_file, runs_root
) -> None:
    from ray_jobs import train_sft

    reference, _ = finished_run
    config = sft_run_config(runs_root, "interrupted", data_file)
    storage = stage_dir(config) / "ray_train"
    killed: dict = {}
    watcher = threading.Thread(
        target=kill_a_worker_after_first_checkpoint, args=(storage, killed), daemon=True
    )
    watcher.start()
    with pytest.raises(RuntimeError, match="rerun the same command to resume"):
        train_sft.run(config)
    watcher.join(timeout=5)
    assert "pid" in killed, "no Ray Train worker was found to kill"
    assert not (stage_dir(config) / "_SUCCESS").exists()

    stats = train_sft.run(config)  # the rerun
    records = read_metrics(config)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))  # each step once, none repeated
    resumed = [r for r in records if r["attempt"] == 1]
    resumed_from = resumed[0]["step"] - 1
    assert f"checkpoint_step_{resumed_from:08d}" in killed["checkpoints"]
    assert 0 < resumed_from < STEPS and resumed_from % CHECKPOINT_EVERY == 0
    assert stats["attempts"] == 2

    final = f"checkpoint_step_{STEPS:08d}"
    want = checkpoint_weights(stage_dir(reference) / "ray_train" / final)
    got = checkpoint_weights(storage / final)
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
    reference_losses = [r["loss"] for r in read_metrics(reference)]
    assert [r["loss"] for r in records] == pytest.approx(reference_losses, rel=1e-5)


VLLM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from vllm import LLM, SamplingParams

    if __name__ == "__main__":
        llm = LLM(model=sys.argv[1], dtype="bfloat16", max_model_len=256, max_num_seqs=2, enforce_eager=True)
        messages = [{"role": "user", "content": "What is the SI unit of force?"}]
        out = llm.chat(messages, SamplingParams(temperature=0.0, max_tokens=8))[0].outputs[0]
        print("RESULT " + json.dumps({"n_tokens": len(out.token_ids), "text": out.text}))
    """
)


def test_exported_model_loads_in_vllm_and_generates(finished_run, tmp_path: Path) -> None:
    config, _ = finished_run
    script = tmp_path / "generate.py"
    script.write_text(VLLM_SCRIPT)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(stage_dir(config) / "model")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["n_tokens"] > 0
