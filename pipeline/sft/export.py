"""A training checkpoint → a Hugging Face model folder that vLLM (and ``from_pretrained``) loads.

The folder holds ``config.json``, ``model.safetensors`` (weights cast to ``export.dtype``), the
tokenizer with the chat template the model was trained with, and a ``generation_config.json`` whose
stop tokens include the template's end-of-turn token (``<|im_end|>`` for ChatML), so a served model
stops at the end of its answer. No process group is needed: the sharded checkpoint is read with
torch distributed checkpoint's no-dist loader straight into a model built on the meta device, so
the only memory used is the exported model in its export dtype.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import torch

from pipeline import assets
from pipeline.rundir import filesystem
from pipeline.sft.chat import end_of_turn_token_id, load_sft_tokenizer
from pipeline.sft.checkpoint import load_model_weights
from pipeline.sft.config import SftConfig

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def export_hf_model(sft: SftConfig, checkpoint_uri: str, out_uri: str) -> str:
    """Write the model of the checkpoint at ``checkpoint_uri`` to ``out_uri`` (local path or s3://…)."""
    import pyarrow.fs as pafs
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    dtype = DTYPES[sft.export.dtype]
    base = assets.resolve(sft.model.name_or_path)
    config = AutoConfig.from_pretrained(base)
    with tempfile.TemporaryDirectory(prefix="sft-export-") as scratch:
        checkpoint_dir = _local_copy(checkpoint_uri, os.path.join(scratch, "checkpoint"))
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.to_empty(device="cpu")
        load_model_weights(checkpoint_dir, model)
        model.config.use_cache = True
        model.config.dtype = dtype

        tokenizer = load_sft_tokenizer(sft.tokenizer_name, sft.model.chat_template)
        stop_ids = _stop_token_ids(base, tokenizer, config)
        try:
            generation = GenerationConfig.from_pretrained(base)
        except OSError:
            generation = GenerationConfig()
        generation.eos_token_id = stop_ids if len(stop_ids) > 1 else stop_ids[0]
        generation.pad_token_id = tokenizer.pad_token_id
        model.generation_config = generation

        local_out = os.path.join(scratch, "model")
        model.save_pretrained(local_out, safe_serialization=True)
        tokenizer.save_pretrained(local_out)

        fs, path = filesystem(out_uri)
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_dir(path)
        if isinstance(fs, pafs.LocalFileSystem):
            shutil.copytree(local_out, path)
        else:
            pafs.copy_files(local_out, path, destination_filesystem=fs)
    return out_uri


def _stop_token_ids(base: str, tokenizer: Any, config: Any) -> list[int]:
    """End-of-turn of the training template first, then whatever the base model stopped on."""
    ids = [end_of_turn_token_id(tokenizer)]
    for candidate in (getattr(config, "eos_token_id", None), tokenizer.eos_token_id):
        for token in candidate if isinstance(candidate, list) else [candidate]:
            if token is not None and token not in ids:
                ids.append(int(token))
    return ids


def _local_copy(uri: str, scratch: str) -> str:
    """A local folder with the checkpoint (itself when already local)."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    pafs.copy_files(path, scratch, source_filesystem=fs)
    return scratch
