"""The ``train_sft`` section of a run YAML: the paper's SFT recipe and how to run it.

Defaults are the MegaScience recipe (../shared/SPEC-pipeline.md §17, LLaMA-Factory
``training_config.yaml``): full fine-tuning, AdamW, lr 5e-6, cosine schedule, warm-up ratio 0.05,
3 epochs, global batch 512, sequences cut at 4,096 tokens, no packing, bf16 on GPU. What the paper
ran with DeepSpeed ZeRO-3 on 64 GPUs (8 per device × 64 × accumulation 1) runs here on any number of
workers: the gradient accumulation is derived (:func:`plan_batches`) so the global batch stays 512.

```yaml
train_sft:
  model: {name_or_path: Qwen/Qwen3-1.7B-Base, chat_template: builtin:qwen3}
  data: {input: stage:finalize}          # or a .parquet/.jsonl path, dir or glob, or hf:<dataset>
  recipe: {learning_rate: 5.0e-6, num_epochs: 3, global_batch_size: 512, micro_batch_size: 8}
  parallelism: {num_workers: 8, use_gpu: true}   # FSDP2 + bf16 + activation checkpointing
  checkpointing: {every_n_steps: 200}
```
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from pipeline import config as cfg
from pipeline.config import ConfigError, check


@dataclass(frozen=True)
class SftModelConfig:
    """Args:
    name_or_path: base model: HF id (``Qwen/Qwen3-1.7B-Base``), local dir or ``builtin:tiny-qwen3``.
    tokenizer: tokenizer to use; ``null`` = the model's own.
    chat_template: how a record becomes a conversation. ``auto`` = the tokenizer's own template,
        which must mark the assistant turn with ``{% generation %}`` (official Qwen/Llama templates
        do not; transformers needs the marker for the assistant-only loss mask). Built-ins with the
        marker: ``builtin:qwen3`` (ChatML, as the project's Qwen3 tokenizer), ``builtin:qwen2.5``
        (ChatML with Qwen2.5's default system prompt, LLaMA-Factory's ``qwen`` template),
        ``builtin:llama3`` (LLaMA-Factory's ``llama3``). Or a path to a ``.jinja`` file.
    attn_implementation: transformers attention backend: ``sdpa`` (everywhere) or
        ``flash_attention_2`` (GPU, needs the flash-attn package; varlen attention for packing).
    """

    name_or_path: str = "builtin:tiny-qwen3"
    tokenizer: str | None = None
    chat_template: str = "auto"
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        check(bool(self.name_or_path), "model.name_or_path", "must name a model")
        check(
            self.attn_implementation in ("sdpa", "eager", "flash_attention_2", "flash_attention_3"),
            "model.attn_implementation",
            f"{self.attn_implementation!r} is not one of sdpa, eager, flash_attention_2, flash_attention_3",
        )


@dataclass(frozen=True)
class SftDataConfig:
    """Args:
    input: where the QA records come from: ``stage:<name>`` (a finished stage of this run, e.g.
        ``stage:finalize`` or ``stage:mixture``), a ``.parquet``/``.jsonl`` file, a folder of them or
        a glob, or ``hf:<dataset>`` (``datasets.load_dataset``: a hub name or a local folder).
    hf_config / hf_split: the ``load_dataset`` config name and split for ``hf:`` inputs.
    question_column / answer_column: which columns become the user and the assistant turn.
    id_column: a column with stable record ids (``qa_id`` in this pipeline); a content hash of
        question + answer when absent.
    system_prompt: an optional system turn before every question (the paper used none).
    max_samples: keep only the first N records (smoke runs); ``null`` = all.
    rows_per_shard: tokenisation work unit; each shard is tokenised and cached on its own.
    """

    input: str = "stage:finalize"
    hf_config: str | None = None
    hf_split: str = "train"
    question_column: str = "question"
    answer_column: str = "answer"
    id_column: str | None = "qa_id"
    system_prompt: str | None = None
    max_samples: int | None = None
    rows_per_shard: int = 20000

    def __post_init__(self) -> None:
        check(bool(self.input), "data.input", "must name the training data")
        check(self.max_samples is None or self.max_samples > 0, "data.max_samples", "must be positive")
        check(self.rows_per_shard > 0, "data.rows_per_shard", "must be positive")
        check(self.question_column != self.answer_column, "data.answer_column", "must differ from question")


@dataclass(frozen=True)
class SftRecipe:
    """The optimisation recipe (paper defaults).

    Args:
        learning_rate / lr_scheduler / warmup_ratio: peak LR, its decay to 0, and the linear warm-up
            share of all steps (``ceil(total_steps * warmup_ratio)`` steps, as transformers).
        num_epochs: passes over the data; the data is reshuffled each epoch (seed + epoch).
        global_batch_size: sequences per optimizer step over all workers (fixed at any cluster size).
        micro_batch_size: sequences per forward/backward on one worker (memory knob; lowered
            automatically when it does not divide ``global_batch_size / num_workers``).
        max_length: token budget per sequence; longer conversations are cut as LLaMA-Factory does
            (question and answer cut in proportion, see :func:`pipeline.sft.data.truncate_lengths`).
        packing: pack several conversations into one ``max_length`` row without attention between
            them (position ids restart per conversation). The paper trained without packing.
        weight_decay / adam_betas / adam_epsilon / max_grad_norm: AdamW and clipping (transformers
            ``Trainer`` defaults, which LLaMA-Factory inherits).
        seed: model-independent randomness: data order per epoch, RNG streams.
        max_steps: stop after this many optimizer steps (smoke runs; the schedule then spans
            ``max_steps``); ``null`` = ``num_epochs`` full passes.
    """

    learning_rate: float = 5.0e-6
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = 0.05
    num_epochs: int = 3
    global_batch_size: int = 512
    micro_batch_size: int = 8
    max_length: int = 4096
    packing: bool = False
    weight_decay: float = 0.0
    adam_betas: tuple[float, ...] = (0.9, 0.999)
    adam_epsilon: float = 1.0e-8
    max_grad_norm: float = 1.0
    seed: int = 42
    max_steps: int | None = None

    def __post_init__(self) -> None:
        check(self.learning_rate > 0, "recipe.learning_rate", "must be positive")
        check(0 <= self.warmup_ratio < 1, "recipe.warmup_ratio", "must be in [0, 1)")
        check(self.num_epochs >= 1, "recipe.num_epochs", "must be at least 1")
        check(self.global_batch_size >= 1, "recipe.global_batch_size", "must be at least 1")
        check(self.micro_batch_size >= 1, "recipe.micro_batch_size", "must be at least 1")
        check(self.max_length >= 16, "recipe.max_length", "must be at least 16 tokens")
        check(len(self.adam_betas) == 2, "recipe.adam_betas", "must be two numbers, e.g. [0.9, 0.999]")
        check(self.max_grad_norm > 0, "recipe.max_grad_norm", "must be positive")
        check(self.max_steps is None or self.max_steps >= 1, "recipe.max_steps", "must be at least 1")


@dataclass(frozen=True)
class SftParallelism:
    """Args:
    num_workers: Ray Train workers (one per GPU on GPU clusters).
    use_gpu: one GPU per worker, NCCL; otherwise CPU workers on gloo.
    cpus_per_worker: logical CPUs each worker reserves (its torch thread count on CPU).
    strategy: ``fsdp`` = FSDP2 (``fully_shard`` per decoder layer, the ZeRO-3 equivalent),
        ``ddp`` = replicated DistributedDataParallel, ``auto`` = fsdp on GPU, ddp on CPU.
    precision: ``bf16`` = bf16 compute with fp32 master weights, gradients reduced in fp32 (what
        DeepSpeed ``bf16: true`` does); ``fp32``; ``auto`` = bf16 on GPU, fp32 on CPU.
    activation_checkpointing: recompute activations in backward; ``null`` = on with GPUs.
    """

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    activation_checkpointing: bool | None = None

    def __post_init__(self) -> None:
        check(self.num_workers >= 1, "parallelism.num_workers", "must be at least 1")
        check(self.cpus_per_worker >= 1, "parallelism.cpus_per_worker", "must be at least 1")

    @property
    def resolved_strategy(self) -> str:
        if self.strategy != "auto":
            return self.strategy
        return "fsdp" if self.use_gpu else "ddp"

    @property
    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        return "bf16" if self.use_gpu else "fp32"

    @property
    def resolved_activation_checkpointing(self) -> bool:
        return self.use_gpu if self.activation_checkpointing is None else self.activation_checkpointing


@dataclass(frozen=True)
class SftCheckpointing:
    """Args:
    every_n_steps: save a checkpoint every N optimizer steps (also at each epoch end and at the
        last step). Checkpoints hold the sharded model and optimizer (torch distributed checkpoint,
        loadable on any worker count), scheduler, data position, RNG state and the metrics so far.
    each_epoch: also save at the end of every epoch (the paper's ``save_strategy: epoch``).
    num_to_keep: newest checkpoints kept in storage (older ones are deleted).
    max_failures: worker failures Ray Train recovers from within one run (``FailureConfig``),
        resuming from the latest checkpoint; ``-1`` = unlimited.
    storage_path: where Ray Train keeps the run (local, NFS or ``s3://``); ``null`` =
        ``<run dir>/train_sft`` (the run root must then be shared storage on a multi-node cluster).
    """

    every_n_steps: int = 500
    each_epoch: bool = True
    num_to_keep: int = 2
    max_failures: int = 3
    storage_path: str | None = None

    def __post_init__(self) -> None:
        check(self.every_n_steps >= 1, "checkpointing.every_n_steps", "must be at least 1")
        check(self.num_to_keep >= 1, "checkpointing.num_to_keep", "must be at least 1")
        check(self.max_failures >= -1, "checkpointing.max_failures", "must be -1 (unlimited) or >= 0")


@dataclass(frozen=True)
class SftLogging:
    """Args:
    log_every_steps: print a progress line every N steps (metrics.jsonl gets every step).
    flush_every_s: rewrite ``metrics.jsonl`` in the stage folder at most this often (and at every
        checkpoint and the end), so a long run can be watched while it trains.
    peak_tflops_per_device: the device's dense peak for the training precision, for MFU; ``null``
        = looked up from the GPU name (H100/H200 989, A100 312 bf16 …); CPUs have no entry, so MFU is
        left empty there unless set.
    mlflow_tracking_uri / mlflow_experiment: log metrics to MLflow too (needs ``pip install mlflow``).
    wandb_project: log metrics to Weights & Biases too (needs ``pip install wandb``).
    """

    log_every_steps: int = 1
    flush_every_s: float = 30.0
    peak_tflops_per_device: float | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "megascience-sft"
    wandb_project: str | None = None

    def __post_init__(self) -> None:
        check(self.log_every_steps >= 1, "logging.log_every_steps", "must be at least 1")
        check(self.flush_every_s >= 0, "logging.flush_every_s", "must be >= 0")
        check(
            self.peak_tflops_per_device is None or self.peak_tflops_per_device > 0,
            "logging.peak_tflops_per_device",
            "must be positive",
        )


@dataclass(frozen=True)
class SftExport:
    """Args:
    dtype: weight dtype of the exported Hugging Face model (vLLM serves bf16).
    """

    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"


@dataclass(frozen=True)
class SftConfig:
    """The whole ``train_sft`` section."""

    model: SftModelConfig = field(default_factory=SftModelConfig)
    data: SftDataConfig = field(default_factory=SftDataConfig)
    recipe: SftRecipe = field(default_factory=SftRecipe)
    parallelism: SftParallelism = field(default_factory=SftParallelism)
    checkpointing: SftCheckpointing = field(default_factory=SftCheckpointing)
    logging: SftLogging = field(default_factory=SftLogging)
    export: SftExport = field(default_factory=SftExport)

    def __post_init__(self) -> None:
        # Fail at load time, not after tokenising: the batch plan must exist for this cluster size.
        plan_batches(
            self.recipe.global_batch_size, self.parallelism.num_workers, self.recipe.micro_batch_size
        )

    @property
    def tokenizer_name(self) -> str:
        return self.model.tokenizer or self.model.name_or_path

    def data_fingerprint(self) -> str:
        """What the tokenised cache depends on: input, columns, tokenizer, template, length, packing."""
        return _hash(
            {
                "data": cfg.to_dict(self.data),
                "tokenizer": self.tokenizer_name,
                "chat_template": self.model.chat_template,
                "max_length": self.recipe.max_length,
                "packing": self.recipe.packing,
            }
        )

    def training_fingerprint(self) -> str:
        """What a checkpoint's meaning depends on: resuming under another recipe is refused.

        Parallelism, checkpointing and logging are left out on purpose: a run may resume on
        another number of workers, or with checkpoints at other intervals.
        """
        return _hash(
            {
                "model": self.model.name_or_path,
                "data": self.data_fingerprint(),
                "recipe": cfg.to_dict(self.recipe),
            }
        )


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BatchPlan:
    """How one optimizer step's ``global_batch_size`` sequences are spread over the workers.

    ``num_workers × micro_batch_size × grad_accum_steps == global_batch_size`` always holds.
    """

    global_batch_size: int
    num_workers: int
    micro_batch_size: int
    grad_accum_steps: int

    @property
    def per_worker(self) -> int:
        """Sequences one worker processes per optimizer step."""
        return self.micro_batch_size * self.grad_accum_steps


def plan_batches(global_batch_size: int, num_workers: int, micro_batch_size: int) -> BatchPlan:
    """Derive gradient accumulation so the global batch is the same on any cluster size.

    The paper: 64 GPUs × micro-batch 8 × accumulation 1 = 512. On 8 GPUs: 8 × 8 × 8; on one CPU
    worker with micro-batch 8: 1 × 8 × 64. When ``micro_batch_size`` does not divide the per-worker
    share, the largest micro-batch below it that does is used (the global batch is never changed).

    Raises:
        ConfigError: when ``global_batch_size`` is not a multiple of ``num_workers``.
    """
    if global_batch_size % num_workers:
        multiple = num_workers * ((global_batch_size + num_workers - 1) // num_workers)
        raise ConfigError(
            f"recipe.global_batch_size: {global_batch_size} sequences cannot be split evenly over "
            f"{num_workers} workers; use a worker count that divides it, or a global batch that is a "
            f"multiple of {num_workers} (e.g. {multiple})"
        )
    per_worker = global_batch_size // num_workers
    micro = min(micro_batch_size, per_worker)
    while per_worker % micro:
        micro -= 1
    return BatchPlan(global_batch_size, num_workers, micro, per_worker // micro)
