"""Training metrics: FLOP count and MFU, the metrics file, optional trackers, the loss-curve PNG.

MFU (model FLOPs utilisation) = useful model FLOPs per second / (workers × device peak). Useful
FLOPs count real tokens only (padding is waste, not work) and no activation recomputation:

- matmuls: ``6 × N`` per token (forward 2N, backward 4N), N = weight-matrix parameters except
  the input embedding (a lookup), plus the LM head even when it is tied to it. For a mixture of
  experts this counts every expert, not only the active ones, so MFU is overstated there;
- attention scores and values: ``6 × layers × heads × head_dim × L²`` per sequence of L tokens
  (QKᵀ and AV, 2·L²·d each with the causal half skipped, times 3 for forward + backward).

This is the PaLM-paper accounting (Chowdhery et al. 2022, appendix B) with causal attention.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Dense peak TFLOP/s per device for bf16/fp16 (NVIDIA/AMD data sheets, SXM parts, no sparsity).
PEAK_BF16_TFLOPS = {
    "H200": 989.4,
    "H100": 989.4,
    "H800": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10G": 125.0,
    "MI300X": 1307.4,
}


@dataclass(frozen=True)
class ModelFlops:
    """What the FLOP count of a decoder-only model depends on."""

    matmul_params: int
    num_layers: int
    attention_dim: int  # heads × head_dim of the queries

    @classmethod
    def from_model(cls, model: Any) -> ModelFlops:
        """Count from an unwrapped transformers causal LM (before FSDP/DDP wrapping)."""
        config = model.config
        # Weight matrices only (norm scales and biases are not matmuls); tied weights counted once.
        matrices = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
        embed = model.get_input_embeddings().weight.numel()
        head = model.get_output_embeddings()
        tied = head is not None and head.weight is model.get_input_embeddings().weight
        matmul = matrices - embed + (head.weight.numel() if tied else 0)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(matmul, config.num_hidden_layers, config.num_attention_heads * head_dim)

    def training_flops(self, seq_lens: Iterable[int]) -> float:
        """Forward + backward FLOPs of training on sequences of these lengths."""
        flops = 0.0
        for n in seq_lens:
            flops += 6.0 * self.matmul_params * n + 6.0 * self.num_layers * self.attention_dim * n * n
        return flops


def peak_tflops(device_name: str | None, configured: float | None = None) -> float | None:
    """Per-device bf16 peak: the configured value, else looked up from the GPU name, else None."""
    if configured is not None:
        return configured
    if not device_name:
        return None
    name = device_name.upper()
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):  # "GH200" before "H200"
        if key in name:
            return PEAK_BF16_TFLOPS[key]
    return None


def mfu(flops: float, seconds: float, num_devices: int, peak: float | None) -> float | None:
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (num_devices * peak * 1e12)


class MetricsLog:
    """Every step's metrics, kept in memory and mirrored to ``metrics.jsonl`` (rank 0 only).

    The file is rewritten whole (object stores cannot append) at most every ``flush_every_s`` and
    at checkpoints and the end; after a resume the history comes from the checkpoint, so steps the
    killed run took after its last checkpoint disappear from the file instead of appearing twice.
    """

    def __init__(
        self, uri: str | None, history: list[dict[str, Any]] | None = None, flush_every_s: float = 30.0
    ):
        self.uri = uri
        self.records: list[dict[str, Any]] = list(history or [])
        self.flush_every_s = flush_every_s
        self._last_flush = 0.0
        self.trackers: list[Any] = []

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        for tracker in self.trackers:
            tracker.log(record)
        if time.time() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        if self.uri is None:
            return
        write_jsonl(self.uri, self.records)
        self._last_flush = time.time()

    def close(self) -> None:
        self.flush()
        for tracker in self.trackers:
            tracker.close()


def write_jsonl(uri: str, records: Sequence[dict[str, Any]]) -> None:
    from pipeline.rundir import filesystem

    fs, path = filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    payload = "".join(json.dumps(r) + "\n" for r in records).encode()
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(payload)
    fs.move(tmp, path)


def read_jsonl(uri: str) -> list[dict[str, Any]]:
    from pipeline.rundir import filesystem

    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


class MlflowTracker:
    def __init__(self, tracking_uri: str, experiment: str, run_name: str, params: dict[str, Any]):
        try:
            import mlflow
        except ImportError:
            raise RuntimeError(
                "train_sft.logging.mlflow_tracking_uri is set but mlflow is not installed: pip install mlflow"
            ) from None
        self.mlflow = mlflow
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment(experiment)
        self.run = mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def log(self, record: dict[str, Any]) -> None:
        values = {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        self.mlflow.log_metrics(values, step=int(record["step"]))

    def close(self) -> None:
        self.mlflow.end_run()


class WandbTracker:
    def __init__(self, project: str, run_name: str, params: dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise RuntimeError(
                "train_sft.logging.wandb_project is set but wandb is not installed: pip install wandb"
            ) from None
        self.run = wandb.init(project=project, name=run_name, config=params, resume="allow", id=run_name)

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(
            {k: v for k, v in record.items() if isinstance(v, (int, float))}, step=int(record["step"])
        )

    def close(self) -> None:
        self.run.finish()


def format_progress(record: dict[str, Any], total_steps: int, started: float, first_step: int) -> str:
    """One human line per logged step, with an ETA from the steps taken since this (re)start."""
    step = record["step"]
    elapsed = time.time() - started
    done = max(step - first_step, 1)
    eta = elapsed / done * (total_steps - step)
    mfu_text = f" mfu {record['mfu']:.1%}" if record.get("mfu") is not None else ""
    return (
        f"[train_sft] step {step}/{total_steps} epoch {record['epoch']:.2f} loss {record['loss']:.4f} "
        f"lr {record['lr']:.2e} grad_norm {record['grad_norm']:.3f} "
        f"{record['tokens_per_s']:,.0f} tok/s{mfu_text} eta {_duration(eta)}"
    )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def plot_loss(records: Sequence[dict[str, Any]], png_path: str, title: str = "SFT loss") -> str:
    """Loss (and learning rate, right axis) against optimizer step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(steps, [r["loss"] for r in records], color="tab:blue", linewidth=1.2, label="loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean over assistant tokens)", color="tab:blue")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot(steps, [r["lr"] for r in records], color="tab:orange", linewidth=1.0, alpha=0.8)
    lr_ax.set_ylabel("learning rate", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return png_path
