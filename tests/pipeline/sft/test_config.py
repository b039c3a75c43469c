"""The SFT recipe config: paper defaults, batch arithmetic on any cluster size, shipped YAMLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import run_config
from pipeline.config import ConfigError, from_dict
from pipeline.sft.config import SftConfig, plan_batches

CONFIGS = Path(__file__).resolve().parents[3] / "ray_jobs" / "configs"


def test_defaults_are_the_paper_recipe() -> None:
    recipe = SftConfig().recipe
    assert recipe.learning_rate == 5e-6
    assert recipe.lr_scheduler == "cosine"
    assert recipe.warmup_ratio == 0.05
    assert recipe.num_epochs == 3
    assert recipe.global_batch_size == 512
    assert recipe.max_length == 4096
    assert recipe.packing is False


@pytest.mark.parametrize(
    ("workers", "micro", "expected_micro", "expected_accum"),
    [
        (1, 8, 8, 64),  # one worker: all 512 sequences by accumulation
        (2, 8, 8, 32),  # two workers: half the accumulation, same global batch
        (64, 8, 8, 1),  # the paper's 8 nodes × 8 GPUs, no accumulation
        (8, 24, 16, 4),  # 24 does not divide 64 per worker: largest micro-batch below that does
    ],
)
def test_global_batch_stays_fixed(workers: int, micro: int, expected_micro: int, expected_accum: int) -> None:
    plan = plan_batches(512, workers, micro)
    assert (plan.micro_batch_size, plan.grad_accum_steps) == (expected_micro, expected_accum)
    assert plan.num_workers * plan.micro_batch_size * plan.grad_accum_steps == 512
    assert plan.per_worker == 512 // workers


def test_global_batch_not_divisible_by_workers_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"512 sequences cannot be split evenly over 6 workers.*516"):
        from_dict(SftConfig, {"parallelism": {"num_workers": 6}})


def test_unknown_and_bad_keys_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"recipe\.learning_rat"):
        from_dict(SftConfig, {"recipe": {"learning_rat": 1e-5}})
    with pytest.raises(ConfigError, match=r"recipe\.warmup_ratio"):
        from_dict(SftConfig, {"recipe": {"warmup_ratio": 1.5}})


def test_training_fingerprint_ignores_cluster_shape_but_not_recipe() -> None:
    base = SftConfig()
    other_cluster = from_dict(SftConfig, {"parallelism": {"num_workers": 8, "use_gpu": True}})
    other_lr = from_dict(SftConfig, {"recipe": {"learning_rate": 1e-5}})
    assert base.training_fingerprint() == other_cluster.training_fingerprint()
    assert base.training_fingerprint() != other_lr.training_fingerprint()
    assert base.data_fingerprint() == other_lr.data_fingerprint()


def test_strategy_and_precision_follow_the_device() -> None:
    cpu = SftConfig().parallelism
    gpu = from_dict(SftConfig, {"parallelism": {"num_workers": 8, "use_gpu": True}}).parallelism
    assert (cpu.resolved_strategy, cpu.resolved_precision, cpu.resolved_activation_checkpointing) == (
        "ddp",
        "fp32",
        False,
    )
    assert (gpu.resolved_strategy, gpu.resolved_precision, gpu.resolved_activation_checkpointing) == (
        "fsdp",
        "bf16",
        True,
    )


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("sft_*.yaml")), ids=lambda p: p.name)
def test_shipped_sft_configs_load(path: Path) -> None:
    config = run_config.load(path)
    sft = config.stage("train_sft")
    assert isinstance(sft, SftConfig)
    plan = plan_batches(
        sft.recipe.global_batch_size, sft.parallelism.num_workers, sft.recipe.micro_batch_size
    )
    assert plan.num_workers * plan.per_worker == sft.recipe.global_batch_size
    if sft.parallelism.use_gpu:  # every paper-model config keeps the paper's recipe
        assert (sft.recipe.learning_rate, sft.recipe.global_batch_size, sft.recipe.max_length) == (
            5e-6,
            512,
            4096,
        )
        assert (sft.recipe.num_epochs, sft.recipe.warmup_ratio, sft.recipe.lr_scheduler) == (
            3,
            0.05,
            "cosine",
        )
