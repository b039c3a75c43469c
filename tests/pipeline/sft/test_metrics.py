"""FLOP count / MFU, peak lookup, the metrics file and the loss plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.sft.metrics import MetricsLog, ModelFlops, format_progress, mfu, peak_tflops, plot_loss


def test_flop_model_counts_every_matmul_weight(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    flops = ModelFlops.from_model(model)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert flops.matmul_params == linear  # includes the LM head although it is tied to the embedding
    assert (flops.num_layers, flops.attention_dim) == (2, 4 * 32)
    n = 100
    assert flops.training_flops([n]) == 6 * linear * n + 6 * 2 * 128 * n * n
    assert flops.training_flops([50, 50]) < flops.training_flops([100])  # packing: attention is per sequence


@pytest.mark.parametrize(
    ("name", "expected"),
    [("NVIDIA H200", 989.4), ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0),
     ("Some CPU", None), (None, None)],
)  # fmt: skip
def test_peak_lookup(name: str | None, expected: float | None) -> None:
    assert peak_tflops(name) == expected
    assert peak_tflops(name, configured=100.0) == 100.0


def test_mfu() -> None:
    assert mfu(989.4e12, 1.0, 1, 989.4) == pytest.approx(1.0)
    assert mfu(989.4e12, 2.0, 2, 989.4) == pytest.approx(0.25)
    assert mfu(1e12, 1.0, 1, None) is None


def test_metrics_file_and_plot(tmp_path: Path) -> None:
    uri = str(tmp_path / "sub" / "metrics.jsonl")
    log = MetricsLog(uri, history=[{"step": 1, "loss": 3.0, "lr": 0.0}], flush_every_s=3600)
    log.flush()
    log.log({"step": 2, "loss": 2.0, "lr": 1e-5})  # throttled: not written yet
    assert len(Path(uri).read_text().splitlines()) == 1
    log.close()
    records = [json.loads(line) for line in Path(uri).read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    png = plot_loss(records, str(tmp_path / "loss.png"))
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    line = format_progress(
        {
            "step": 2,
            "epoch": 0.5,
            "loss": 2.0,
            "lr": 1e-5,
            "grad_norm": 0.5,
            "tokens_per_s": 1234.0,
            "mfu": 0.42,
        },
        total_steps=4,
        started=0.0,
        first_step=0,
    )
    assert (
        line.startswith("[train_sft] step 2/4 epoch 0.50 loss 2.0000")
        and "1,234 tok/s" in line
        and "42.0%" in line
    )
