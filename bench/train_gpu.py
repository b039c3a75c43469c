"""MFU of one SFT training step for the Qwen3-1.7B shape on one GPU (torch + transformers only).

The model is built from Qwen3-1.7B(-Base)'s configuration with random weights (no download): 28
layers, hidden 2048, 16 query / 8 KV heads of 128, MLP 6144, tied 151,936-token embeddings. One
step is what the SFT stage does per micro-batch on a GPU worker: bf16 autocast over fp32 master
weights, activation checkpointing, forward + cross-entropy over the full vocabulary + backward,
gradient clipping, fused AdamW. Sequences are ``--seq-len`` (default 4,096, the recipe's cut-off)
tokens long, ``--micro-batch`` of them per step, every token trained on.

MFU = model FLOPs / step time / device peak, with the FLOP count of ``pipeline.sft.metrics``
(6·N per token for the N matmul parameters including the LM head, plus causal attention
6·layers·heads·head_dim·L² per sequence; recomputation by activation checkpointing is not counted).
The peak is looked up from the GPU name (H100/H200 SXM: 989 dense bf16 TFLOP/s) or ``--peak-tflops``.
The issue's goal is >= 50% on an H200.

    python bench/train_gpu.py                          # GPU: the 1.7B shape, seq 4,096
    python bench/train_gpu.py --micro-batch 2 --no-activation-checkpointing --compile
    python bench/train_gpu.py --tiny                   # CPU smoke test of this script (seconds)

Prints one line per timed step and a summary; ``--json PATH`` also writes the summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from pipeline.sft.metrics import ModelFlops, peak_tflops

# Qwen/Qwen3-1.7B-Base config.json (the architecture; weights are random here).
QWEN3_1P7B = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
TINY = {
    "vocab_size": 151936,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}


def build(args: argparse.Namespace, device: torch.device) -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    shape = dict(TINY if args.tiny else QWEN3_1P7B)
    rope_theta = shape.pop("rope_theta", 10000.0)
    config = Qwen3Config(**shape, attn_implementation=args.attn, use_cache=False)
    config.rope_parameters = {"rope_type": "default", "rope_theta": rope_theta}
    torch.manual_seed(0)
    with device:
        model = Qwen3ForCausalLM(config)
    master_dtype = torch.bfloat16 if args.pure_bf16 else torch.float32
    model.to(dtype=master_dtype)
    if not args.no_activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="2-layer model, short sequences, CPU allowed")
    parser.add_argument(
        "--seq-len", type=int, default=None, help="tokens per sequence (default 4096; tiny 128)"
    )
    parser.add_argument(
        "--micro-batch", type=int, default=None, help="sequences per step (default 4; tiny 2)"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 8; tiny 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; tiny 1)")
    parser.add_argument("--attn", default="sdpa", help="sdpa | flash_attention_2 | eager")
    parser.add_argument("--no-activation-checkpointing", action="store_true")
    parser.add_argument(
        "--pure-bf16", action="store_true", help="bf16 weights and optimizer (an upper bound)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="device peak for MFU (default: by name)"
    )
    parser.add_argument("--json", default=None, help="also write the summary to this file")
    args = parser.parse_args()
    seq_len = args.seq_len or (128 if args.tiny else 4096)
    micro = args.micro_batch or (2 if args.tiny else 4)
    steps = args.steps or (2 if args.tiny else 8)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        raise SystemExit("no CUDA device: this benchmark needs a GPU (use --tiny for a CPU smoke test)")
    device = torch.device("cuda" if cuda else "cpu")
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak = peak_tflops(device_name if cuda else None, args.peak_tflops)

    model = build(args, device)
    flops_model = ModelFlops.from_model(model)
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-6, fused=cuda)
    use_autocast = cuda and not args.pure_bf16
    generator = torch.Generator(device="cpu").manual_seed(0)
    inputs = torch.randint(0, model.config.vocab_size, (micro, seq_len), generator=generator).to(device)
    flops_per_step = flops_model.training_flops([seq_len] * micro)

    def one_step() -> float:
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_autocast):
            loss = step_model(input_ids=inputs, labels=inputs, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started

    print(
        f"{device_name}: Qwen3 {'tiny' if args.tiny else '1.7B'} shape, {flops_model.matmul_params / 1e9:.3f}B matmul "
        f"params, {micro} x {seq_len} tokens/step, {'pure bf16' if args.pure_bf16 else 'bf16 autocast + fp32 master' if cuda else 'fp32'}, "
        f"activation checkpointing {'off' if args.no_activation_checkpointing else 'on'}, attn {args.attn}"
        f"{', compiled' if args.compile else ''}"
    )
    for _ in range(warmup):
        one_step()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps):
        seconds = one_step()
        times.append(seconds)
        achieved = flops_per_step / seconds / 1e12
        mfu_text = f"  MFU {achieved / peak:.1%}" if peak else ""
        print(
            f"step {i + 1}: {seconds * 1000:8.1f} ms  {micro * seq_len / seconds:10,.0f} tok/s  {achieved:8.2f} TFLOP/s{mfu_text}"
        )

    median = statistics.median(times)
    summary = {
        "device": device_name,
        "shape": "tiny" if args.tiny else "qwen3-1.7b",
        "seq_len": seq_len,
        "micro_batch": micro,
        "step_time_s": median,
        "tokens_per_s": micro * seq_len / median,
        "model_tflops_per_s": flops_per_step / median / 1e12,
        "peak_tflops": peak,
        "mfu": flops_per_step / median / (peak * 1e12) if peak else None,
        "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
        "activation_checkpointing": not args.no_activation_checkpointing,
        "pure_bf16": args.pure_bf16,
        "compile": args.compile,
        "attn": args.attn,
    }
    mfu_text = (
        f"MFU {summary['mfu']:.1%} (goal >= 50% on H200)" if peak else "MFU n/a (no peak for this device)"
    )
    print(
        f"median step {median * 1000:.1f} ms, {summary['tokens_per_s']:,.0f} tok/s, "
        f"{summary['model_tflops_per_s']:.2f} TFLOP/s, {mfu_text}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
