"""Sharded checkpoints: FSDP2 on 2 gloo processes → resumed on 1 process with the same model,
optimizer and scheduler state (torch distributed checkpoint reshards), and the no-process-group
loader the export uses. No Ray here: this is the library the Ray Train loop calls."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from pipeline.config import from_dict
from pipeline.sft.checkpoint import (
    TrainerState,
    load_checkpoint,
    load_model_weights,
    read_state,
    save_checkpoint,
)
from pipeline.sft.config import SftConfig

pytestmark = pytest.mark.slow


def tiny_sft(strategy: str, workers: int) -> SftConfig:
    return from_dict(
        SftConfig,
        {
            "model": {"name_or_path": "builtin:tiny-qwen3", "chat_template": "builtin:qwen3"},
            "recipe": {"learning_rate": 1e-3, "global_batch_size": 4, "micro_batch_size": 1, "max_steps": 10},
            "parallelism": {"num_workers": workers, "strategy": strategy},
        },
    )


def micro_batches(rank: int, world: int, accum: int) -> list[dict]:
    """The same global batch of 4 sequences, each rank taking its share."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (4, 12), generator=generator)
    labels = ids.clone()
    labels[:, :4] = -100
    mine = range(rank * accum, (rank + 1) * accum)
    return [
        {"input_ids": ids[i : i + 1], "labels": labels[i : i + 1], "n_tokens": 12, "n_padded": 12}
        for i in mine
    ]


def fsdp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from pipeline.sft.ray_train import build_model, build_optimizer, build_scheduler, train_step

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    sft = tiny_sft("fsdp", world)
    model, _ = build_model(sft, torch.device("cpu"), world)
    optimizer = build_optimizer(sft, model)
    scheduler = build_scheduler(sft, optimizer, 10)
    losses = []
    for _ in range(3):  # the first step has LR 0 (one warm-up step)
        result = train_step(
            model,
            optimizer,
            scheduler,
            micro_batches(rank, world, 4 // world),
            torch.device("cpu"),
            world,
            1.0,
        )
        losses.append(result["loss"])
    state = TrainerState(
        fingerprint="fp", total_steps=10, steps_per_epoch=5, global_step=3, step_in_epoch=3, world_size=world
    )
    save_checkpoint(
        out_dir, model, optimizer, scheduler, state, rank, [{"step": 1}, {"step": 2}, {"step": 3}]
    )
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        torch.save({"weights": full, "losses": losses}, os.path.join(out_dir, "..", "reference.pt"))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp_checkpoint_resumes_on_another_worker_count(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch.multiprocessing as mp

    from pipeline.sft.ray_train import build_model, build_optimizer, build_scheduler, train_step

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    mp.spawn(fsdp_worker, args=(2, free_port(), str(checkpoint)), nprocs=2, join=True)
    reference = torch.load(tmp_path / "reference.pt", weights_only=False)
    assert reference["losses"][2] < reference["losses"][0]
    assert {p.name for p in checkpoint.iterdir()} >= {
        ".metadata",
        "__0_0.distcp",
        "__1_0.distcp",
        "trainer_state.json",
    }
    assert read_state(str(checkpoint)).global_step == 3

    # Resume on ONE worker, unsharded: the model, AdamW moments and the LR schedule carry over.
    sft = tiny_sft("ddp", 1)
    model, _ = build_model(sft, torch.device("cpu"), world_size=1)
    optimizer = build_optimizer(sft, model)
    scheduler = build_scheduler(sft, optimizer, 10)
    state = load_checkpoint(str(checkpoint), model, optimizer, scheduler, 0, 1, "fp", seed=0)
    assert (state.global_step, state.step_in_epoch, state.world_size) == (3, 3, 2)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, reference["weights"][name], msg=lambda m, n=name: f"{n}: {m}")
    assert scheduler.last_epoch == 3
    adam_state = optimizer.state[next(iter(model.parameters()))]
    assert int(adam_state["step"]) == 3 and adam_state["exp_avg"].abs().sum() > 0
    result = train_step(model, optimizer, scheduler, micro_batches(0, 1, 4), torch.device("cpu"), 1, 1.0)
    assert result["loss"] < reference["losses"][2]  # training continues downhill from the checkpoint

    with pytest.raises(RuntimeError, match="another model, data or recipe"):
        load_checkpoint(str(checkpoint), model, optimizer, scheduler, 0, 1, "other", seed=0)

    # The export path: no process group at all, straight into a bf16 model.
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.bfloat16)
    load_model_weights(str(checkpoint), plain)
    torch.testing.assert_close(
        plain.model.embed_tokens.weight.float(),
        reference["weights"]["model.embed_tokens.weight"],
        rtol=1e-2,
        atol=1e-2,
    )
    assert json.loads((checkpoint / "metrics.jsonl").read_text().splitlines()[-1]) == {"step": 3}
