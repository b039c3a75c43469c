"""The SFT stage as a Ray Train construct: the per-worker training loop and the ``TorchTrainer``.

Driver side (:func:`fit`): the tokenised cache becomes one Ray Dataset per epoch, shuffled with
``seed + epoch``; Ray Train streams each through ``streaming_split`` to the workers (equal shares,
order preserved, so a worker's stream is the same on every run — what makes resume exact). Run
state lives under ``storage_path/ray_train``: a rerun with the same storage finds the latest
checkpoint there (Ray Train's checkpoint-manager snapshot) and resumes; ``FailureConfig`` restarts
the workers from it when one dies mid-run.

Worker side (:func:`train_loop_per_worker`), per optimizer step:

1. take ``grad_accum_steps`` micro-batches from the worker's stream (:func:`collate` pads them);
2. all-reduce the count of trained (assistant) tokens in the global batch, so every micro-batch's
   summed token loss is divided by the same global count — the loss is the mean over all assistant
   tokens of the global batch, whatever the worker count and micro-batch size (transformers'
   ``num_items_in_batch`` convention);
3. forward/backward each micro-batch (DDP: gradient sync on the last one only; FSDP2: reduce-scatter
   each), clip to ``max_grad_norm``, AdamW step, LR schedule step;
4. rank 0 logs loss, lr, grad norm, tokens/s and MFU; every ``every_n_steps``, at each epoch end and
   at the last step all ranks write a sharded checkpoint and report it to Ray Train.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import torch

from pipeline import assets
from pipeline import config as cfg
from pipeline.sft.checkpoint import (
    TrainerState,
    load_checkpoint,
    read_metrics,
    save_checkpoint,
    seed_everything,
)
from pipeline.sft.config import SftConfig, plan_batches
from pipeline.sft.data import IGNORE_INDEX, collate
from pipeline.sft.metrics import (
    MetricsLog,
    MlflowTracker,
    ModelFlops,
    WandbTracker,
    format_progress,
    mfu,
    peak_tflops,
)

RAY_TRAIN_DIR = "ray_train"  # Ray Train's run folder under the storage path
# Progress goes through logging: Ray Train's patched print() would show each line twice.
log = logging.getLogger("megascience.sft")


def steps_per_epoch(num_rows: int, global_batch_size: int) -> int:
    """Optimizer steps in one pass. The last partial global batch of each epoch is dropped (at most
    ``global_batch_size - 1`` rows, a different set each epoch since the order is reshuffled), so
    every step sees exactly ``global_batch_size`` sequences on any number of workers."""
    return num_rows // global_batch_size


def total_steps(sft: SftConfig, num_rows: int) -> int:
    per_epoch = steps_per_epoch(num_rows, sft.recipe.global_batch_size)
    if per_epoch == 0:
        raise cfg.ConfigError(
            f"train_sft.recipe.global_batch_size: the data has {num_rows} training rows, fewer than one "
            f"global batch of {sft.recipe.global_batch_size}; lower global_batch_size or add data"
        )
    steps = per_epoch * sft.recipe.num_epochs
    return min(steps, sft.recipe.max_steps) if sft.recipe.max_steps else steps


# --- model set-up ---------------------------------------------------------------------------------
def build_model(sft: SftConfig, device: torch.device, world_size: int) -> tuple[torch.nn.Module, ModelFlops]:
    """Load the base model, wrap it for the strategy, and return it with its FLOP model."""
    from transformers import AutoModelForCausalLM

    par = sft.parallelism
    strategy, precision = par.resolved_strategy, par.resolved_precision
    # Load in bf16 when training in bf16 (half the host memory per worker; base checkpoints are bf16
    # anyway), then keep fp32 master weights: layers are upcast one at a time right before sharding.
    load_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        assets.resolve(sft.model.name_or_path),
        dtype=load_dtype,
        attn_implementation=sft.model.attn_implementation,
    )
    model.config.use_cache = False
    flops = ModelFlops.from_model(model)
    if par.resolved_activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if precision == "bf16"
            else MixedPrecisionPolicy()
        )
        block_names = set(getattr(model, "_no_split_modules", None) or [])
        blocks = [m for m in model.modules() if type(m).__name__ in block_names]
        if not blocks:
            raise RuntimeError(f"FSDP: found no decoder blocks ({block_names}) in {type(model).__name__}")
        for block in blocks:
            block.float()  # fp32 master weights, one block at a time: never a full fp32 copy in RAM
            fully_shard(block, mp_policy=policy)  # moves the block's shard to the device
        for param in model.parameters():  # what is left: embeddings, final norm, LM head
            if param.dtype != torch.float32:
                param.data = param.data.float()
        fully_shard(model, mp_policy=policy)
        return model, flops

    model = model.float().to(device)
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    return model, flops


def build_optimizer(sft: SftConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    r = sft.recipe
    return torch.optim.AdamW(
        model.parameters(),
        lr=r.learning_rate,
        betas=tuple(r.adam_betas),
        eps=r.adam_epsilon,
        weight_decay=r.weight_decay,
    )


def build_scheduler(sft: SftConfig, optimizer: torch.optim.Optimizer, steps: int) -> Any:
    """Linear warm-up over ``ceil(steps × warmup_ratio)`` steps, then cosine/linear decay to 0."""
    from transformers import get_scheduler

    warmup = math.ceil(steps * sft.recipe.warmup_ratio)
    return get_scheduler(
        sft.recipe.lr_scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=steps
    )


# --- one optimizer step ---------------------------------------------------------------------------
def _all_reduce(values: list[float], device: torch.device, world_size: int) -> list[float]:
    if world_size == 1:
        return values
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    micro_batches: list[dict[str, Any]],
    device: torch.device,
    world_size: int,
    max_grad_norm: float,
    autocast_bf16: bool = False,
) -> dict[str, float]:
    """Forward/backward over the micro-batches of one global batch, then one optimizer step.

    Returns the global batch's loss (mean over its assistant tokens), the gradient norm before
    clipping, and this worker's token counts.
    """
    local_loss_tokens = sum(int((mb["labels"][:, 1:] != IGNORE_INDEX).sum()) for mb in micro_batches)
    (global_loss_tokens,) = _all_reduce([float(local_loss_tokens)], device, world_size)
    # transformers divides each micro-batch's summed token loss by ``num_items_in_batch``; with
    # global_tokens / world_size here and gradients averaged over workers, the step's gradient is
    # that of the mean loss over every assistant token in the global batch.
    items_per_worker = max(global_loss_tokens, 1.0) / world_size
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    for i, mb in enumerate(micro_batches):
        sync = i == len(micro_batches) - 1
        no_sync = model.no_sync() if ddp and not sync else contextlib.nullcontext()
        amp = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16)
            if autocast_bf16
            else contextlib.nullcontext()
        )
        inputs = {
            k: mb[k].to(device, non_blocking=True)
            for k in ("input_ids", "labels", "attention_mask", "position_ids")
            if k in mb
        }
        with no_sync, amp:
            loss = model(**inputs, num_items_in_batch=items_per_worker, use_cache=False).loss
            loss.backward()
        loss_sum += loss.detach().double() * items_per_worker
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
        grad_norm = grad_norm.full_tensor()
    lr = float(optimizer.param_groups[0]["lr"])  # the LR this step uses
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    (total_loss,) = _all_reduce([float(loss_sum)], device, world_size)
    return {
        "loss": total_loss / max(global_loss_tokens, 1.0),
        "grad_norm": float(grad_norm),
        "lr": lr,
        "loss_tokens": global_loss_tokens,
        "local_tokens": float(sum(mb["n_tokens"] for mb in micro_batches)),
        "local_padded": float(sum(mb["n_padded"] for mb in micro_batches)),
    }


def _micro_batches(
    shard: Any, micro_batch_size: int, pad_token_id: int, skip: int
) -> Iterator[dict[str, Any]]:
    """This worker's padded micro-batches of one epoch, after the first ``skip`` (already trained on)."""
    batches = shard.iter_batches(batch_size=micro_batch_size, batch_format="numpy", prefetch_batches=4)
    for index, batch in enumerate(batches):
        if index >= skip:
            yield collate(batch, pad_token_id)


# --- the Ray Train worker function ----------------------------------------------------------------
def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker. ``loop_config``: ``sft`` (the section as a dict), ``num_rows``
    (training rows), ``pad_token_id``, ``metrics_uri`` (live metrics file), ``run_name``."""
    import ray.train
    import ray.train.torch

    sft = cfg.from_dict(SftConfig, loop_config["sft"], prefix="train_sft")
    recipe, par = sft.recipe, sft.parallelism
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)  # FSDP2's default device mesh and NCCL use the current device
    else:
        torch.set_num_threads(par.cpus_per_worker)
    plan = plan_batches(recipe.global_batch_size, world, recipe.micro_batch_size)
    num_rows = int(loop_config["num_rows"])
    per_epoch = steps_per_epoch(num_rows, recipe.global_batch_size)
    steps = total_steps(sft, num_rows)
    fingerprint = sft.training_fingerprint()

    seed_everything(recipe.seed)
    model, flops_model = build_model(sft, device, world)
    optimizer = build_optimizer(sft, model)
    scheduler = build_scheduler(sft, optimizer, steps)
    state = TrainerState(
        fingerprint=fingerprint, total_steps=steps, steps_per_epoch=per_epoch, world_size=world
    )
    history: list[dict[str, Any]] = []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = load_checkpoint(
                directory, model, optimizer, scheduler, rank, world, fingerprint, recipe.seed
            )
            history = read_metrics(directory) if rank == 0 else []
        state.attempt += 1
        state.resumed_from_step = state.global_step
        state.world_size = world
        if rank == 0:
            log.info(
                f"[train_sft] resumed from step {state.global_step}/{steps} (epoch {state.epoch}, "
                f"{state.step_in_epoch} steps into it) on {world} workers"
            )
    if state.done:
        return  # a finished run restarted (e.g. killed during export): nothing left to train

    is_cuda = device.type == "cuda"
    peak = peak_tflops(
        torch.cuda.get_device_name(device) if is_cuda else None, sft.logging.peak_tflops_per_device
    )
    metrics = MetricsLog(
        loop_config.get("metrics_uri") if rank == 0 else None, history, sft.logging.flush_every_s
    )
    if rank == 0:
        _attach_trackers(metrics, sft, loop_config)
        log.info(
            f"[train_sft] {steps} steps ({per_epoch}/epoch, {num_rows} rows), global batch "
            f"{plan.global_batch_size} = {world} workers × micro-batch {plan.micro_batch_size} × "
            f"{plan.grad_accum_steps} accumulation; {par.resolved_strategy}, {par.resolved_precision}"
        )
    autocast_bf16 = par.resolved_precision == "bf16" and par.resolved_strategy != "fsdp"
    started, first_step = time.time(), state.global_step
    model.train()

    while not state.done:
        epoch = state.epoch
        stream = _micro_batches(
            ray.train.get_dataset_shard(f"epoch_{epoch}"),
            plan.micro_batch_size,
            loop_config["pad_token_id"],
            skip=state.step_in_epoch * plan.grad_accum_steps,  # resume: what this epoch already trained on
        )
        while state.epoch == epoch and not state.done:
            step_started = time.time()
            micro_batches = [next(stream) for _ in range(plan.grad_accum_steps)]
            data_seconds = time.time() - step_started  # > 0 means the step waited for input
            result = train_step(
                model, optimizer, scheduler, micro_batches, device, world, recipe.max_grad_norm, autocast_bf16
            )
            seq_lens = [n for mb in micro_batches for row in mb["seq_lens"] for n in row]
            local_flops = flops_model.training_flops(seq_lens)
            tokens, flops = _all_reduce([result["local_tokens"], local_flops], device, world)
            seconds = time.time() - step_started
            state.advance(plan.global_batch_size, int(tokens))
            record = {
                "step": state.global_step,
                "epoch": state.global_step / per_epoch,
                "loss": result["loss"],
                "lr": result["lr"],
                "grad_norm": result["grad_norm"],
                "tokens": int(tokens),
                "loss_tokens": int(result["loss_tokens"]),
                "tokens_per_s": tokens / seconds,
                "step_time_s": seconds,
                "data_wait_s": data_seconds,
                "mfu": mfu(flops, seconds, world, peak),
                "samples_seen": state.samples_seen,
                "attempt": state.attempt,
                "world_size": world,
                "time": time.time(),
            }
            if rank == 0:
                metrics.log(record)
                if state.global_step % sft.logging.log_every_steps == 0 or state.done:
                    log.info(format_progress(record, steps, started, first_step))
            if _checkpoint_due(sft, state):
                _save_and_report(model, optimizer, scheduler, state, rank, metrics, record)
        if not state.done:
            for _ in stream:  # finish the epoch's stream (the dropped partial batch)
                pass
    if rank == 0:
        metrics.close()


def _checkpoint_due(sft: SftConfig, state: TrainerState) -> bool:
    end_of_epoch = state.step_in_epoch == 0
    return (
        state.done
        or state.global_step % sft.checkpointing.every_n_steps == 0
        or (sft.checkpointing.each_epoch and end_of_epoch)
    )


def _save_and_report(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainerState,
    rank: int,
    metrics: MetricsLog,
    record: dict[str, Any],
) -> None:
    import ray.train

    directory = tempfile.mkdtemp(prefix=f"sft-ckpt-{state.global_step}-")
    try:
        save_checkpoint(directory, model, optimizer, scheduler, state, rank, metrics.records)
        report = {k: record[k] for k in ("step", "epoch", "loss", "lr", "grad_norm")}
        ray.train.report(
            report,
            checkpoint=ray.train.Checkpoint.from_directory(directory),
            checkpoint_dir_name=f"checkpoint_step_{state.global_step:08d}",
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if rank == 0:
        metrics.flush()


def _attach_trackers(metrics: MetricsLog, sft: SftConfig, loop_config: dict[str, Any]) -> None:
    params = {f"{k}": v for k, v in cfg.to_dict(sft.recipe).items()}
    params["model"] = sft.model.name_or_path
    run_name = loop_config.get("run_name", "sft")
    if sft.logging.mlflow_tracking_uri:
        metrics.trackers.append(
            MlflowTracker(sft.logging.mlflow_tracking_uri, sft.logging.mlflow_experiment, run_name, params)
        )
    if sft.logging.wandb_project:
        metrics.trackers.append(WandbTracker(sft.logging.wandb_project, run_name, params))


# --- driver side ----------------------------------------------------------------------------------
# Below this many tokenised rows the epochs are shuffled in the driver's memory: Ray Data's
# all-to-all random_shuffle costs seconds of fixed set-up per epoch, which dominates a small run.
IN_MEMORY_SHUFFLE_MAX_ROWS = 20_000


def build_epoch_datasets(
    files: list[str], num_epochs: int, seed: int, num_rows: int | None = None
) -> dict[str, Any]:
    """One Ray Dataset per epoch over the tokenised rows, shuffled with seed + epoch.

    Small data (``num_rows`` at most :data:`IN_MEMORY_SHUFFLE_MAX_ROWS`) is read once and permuted
    with NumPy; larger data is shuffled lazily by Ray Data. Either way the order depends only on
    the seed and the epoch, so a resumed run sees the same stream.
    """
    import ray.data

    columns = ["input_ids", "loss_mask", "seq_lens"]
    if num_rows is not None and num_rows <= IN_MEMORY_SHUFFLE_MAX_ROWS:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables([pq.read_table(f, columns=columns) for f in files])
        return {
            f"epoch_{epoch}": ray.data.from_arrow(
                table.take(np.random.default_rng(seed + epoch).permutation(table.num_rows))
            )
            for epoch in range(num_epochs)
        }
    base = ray.data.read_parquet(files, columns=columns)
    return {f"epoch_{epoch}": base.random_shuffle(seed=seed + epoch) for epoch in range(num_epochs)}


def fit(
    sft: SftConfig,
    tokenized_files: list[str],
    num_rows: int,
    storage_path: str,
    metrics_uri: str | None,
    run_name: str,
    pad_token_id: int,
) -> Any:
    """Train (or resume, or find finished) the run kept under ``storage_path``; returns Ray's Result."""
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    par, recipe = sft.parallelism, sft.recipe
    steps = total_steps(sft, num_rows)
    epochs_needed = min(
        recipe.num_epochs, math.ceil(steps / steps_per_epoch(num_rows, recipe.global_batch_size))
    )
    datasets = build_epoch_datasets(tokenized_files, epochs_needed, recipe.seed, num_rows)
    env = {
        k: os.environ[k]
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MEGASCIENCE_CACHE")
        if k in os.environ
    }
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "sft": cfg.to_dict(sft),
            "num_rows": num_rows,
            "pad_token_id": pad_token_id,
            "metrics_uri": metrics_uri,
            "run_name": run_name,
        },
        torch_config=TorchConfig(backend="nccl" if par.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=par.num_workers,
            use_gpu=par.use_gpu,
            resources_per_worker={"CPU": par.cpus_per_worker, **({"GPU": 1} if par.use_gpu else {})},
        ),
        run_config=RunConfig(
            name=RAY_TRAIN_DIR,
            storage_path=storage_path,
            failure_config=FailureConfig(max_failures=sft.checkpointing.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=sft.checkpointing.num_to_keep),
            worker_runtime_env={"env_vars": env} if env else None,
        ),
        datasets=datasets,
        # Order-preserving equal split: each worker's stream is deterministic, so skipping the rows
        # a checkpoint already trained on resumes exactly where the run stopped.
        dataset_config=DataConfig(execution_options=ExecutionOptions(preserve_order=True)),
    )
    return trainer.fit()
