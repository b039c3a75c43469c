"""Training checkpoints: sharded model + optimizer, scheduler, data position, RNG, metrics so far.

One checkpoint is a folder::

    .metadata, __<rank>_0.distcp   model and optimizer state, torch distributed checkpoint (DCP)
    trainer_state.json             step, epoch, position in the epoch, scheduler, counters (rank 0)
    rng_rank<r>.pt                 python / numpy / torch RNG state of each worker
    metrics.jsonl                  every step's metrics up to this checkpoint (rank 0)

Why DCP: each worker writes only its own shards (FSDP2) or a share of the de-duplicated replicated
tensors (DDP), and loading reshards, so a run saved on 8 workers resumes on 4 or 16 — and the
checkpoint is also loadable without any process group, which is how :mod:`pipeline.sft.export`
turns it into a Hugging Face model. Every worker writes into its own local folder; Ray Train merges
the folders into one checkpoint in the run's storage (local, NFS or s3://).

The data position is ``(epoch, step_in_epoch)``: on resume each worker skips
``step_in_epoch × per-worker batch`` rows of that epoch's (deterministically shuffled and split)
stream. On the same number of workers that reproduces the uninterrupted run exactly; on another
number, the same *count* of the epoch's samples is skipped but the split differs, so some samples of
the interrupted epoch may repeat and others be missed once (later epochs are unaffected).
RNG states are restored per rank when the worker count is unchanged, and reseeded from
``(seed, step, rank)`` otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.jsonl"


@dataclass
class TrainerState:
    """Where training stands; saved in every checkpoint."""

    fingerprint: str
    total_steps: int
    steps_per_epoch: int
    global_step: int = 0
    epoch: int = 0  # the epoch the next step belongs to
    step_in_epoch: int = 0  # steps of ``epoch`` already taken
    samples_seen: int = 0
    tokens_seen: int = 0  # non-padding tokens
    attempt: int = 0  # 0 for the first start, +1 for every resume
    world_size: int = 1
    resumed_from_step: int | None = None
    scheduler: dict[str, Any] = field(default_factory=dict)

    def advance(self, samples: int, tokens: int) -> None:
        self.global_step += 1
        self.step_in_epoch += 1
        self.samples_seen += samples
        self.tokens_seen += tokens
        if self.step_in_epoch == self.steps_per_epoch:
            self.epoch += 1
            self.step_in_epoch = 0

    @property
    def done(self) -> bool:
        return self.global_step >= self.total_steps

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def save_checkpoint(
    directory: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainerState,
    rank: int,
    metrics_history: list[dict[str, Any]] | None = None,
) -> None:
    """Write this worker's part of a checkpoint into ``directory`` (collective: all ranks call it)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=directory)
    torch.save(_rng_state(), os.path.join(directory, f"rng_rank{rank}.pt"))
    if rank == 0:
        payload = state.to_json()
        payload["scheduler"] = scheduler.state_dict()
        with open(os.path.join(directory, STATE_FILE), "w") as f:
            json.dump(payload, f, indent=2)
        with open(os.path.join(directory, METRICS_FILE), "w") as f:
            for record in metrics_history or []:
                f.write(json.dumps(record) + "\n")


def read_state(directory: str) -> TrainerState:
    with open(os.path.join(directory, STATE_FILE)) as f:
        return TrainerState(**json.load(f))


def read_metrics(directory: str) -> list[dict[str, Any]]:
    path = os.path.join(directory, METRICS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_checkpoint(
    directory: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rank: int,
    world_size: int,
    fingerprint: str,
    seed: int,
) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG from ``directory``; returns the saved state.

    Raises:
        RuntimeError: when the checkpoint was made with another recipe, model or data.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    state = read_state(directory)
    if state.fingerprint != fingerprint:
        raise RuntimeError(
            f"checkpoint {directory} was written by a run with another model, data or recipe "
            f"(fingerprint {state.fingerprint} != {fingerprint}); resume it with its original "
            "train_sft config, or start a new run (another run.name, or --force)"
        )
    model_sd, optim_sd = get_state_dict(model, optimizer)
    target = {"model": model_sd, "optim": optim_sd}
    dcp.load(target, checkpoint_id=directory)
    set_state_dict(model, optimizer, model_state_dict=target["model"], optim_state_dict=target["optim"])
    scheduler.load_state_dict(state.scheduler)
    rng_file = os.path.join(directory, f"rng_rank{rank}.pt")
    if state.world_size == world_size and os.path.exists(rng_file):
        _set_rng_state(torch.load(rng_file, weights_only=False))
    else:
        seed_everything(seed + 1_000_003 * state.global_step + rank)
    return state


def load_model_weights(directory: str, model: torch.nn.Module) -> None:
    """Fill ``model`` (a plain, unwrapped module) from a checkpoint, without a process group.

    Tensors are cast to the model's dtypes, so an fp32 checkpoint loads into a bf16 model.
    """
    import torch.distributed.checkpoint as dcp

    target = {"model": model.state_dict()}
    with warnings.catch_warnings():  # "torch.distributed is disabled …": single-process load is the intent
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(target, checkpoint_id=directory, no_dist=True)
    model.load_state_dict(target["model"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
