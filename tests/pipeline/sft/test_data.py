"""SFT data: input shards, tokenisation with rejects and truncation counts, packing, collation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.config import ConfigError, from_dict
from pipeline.rundir import RunDir
from pipeline.sft.config import SftConfig, SftDataConfig
from pipeline.sft.data import (
    IGNORE_INDEX,
    SftTokenizeShard,
    collate,
    pack_sequences,
    padding_waste,
    plan_input_shards,
    read_shard_rows,
    resolve_input_files,
)

QA = [
    {"qa_id": "a1", "question": "What is the unit of charge?", "answer": "The coulomb.", "subject": "physics"},
    {"qa_id": "a2", "question": "Name a noble gas.", "answer": "Argon is one.", "subject": "chemistry"},
    {"qa_id": "a3", "question": "   ", "answer": "An answer without a question.", "subject": "biology"},
    {"qa_id": "a4", "question": "A question without an answer?", "answer": None, "subject": "biology"},
    {"qa_id": "a5", "question": "Explain osmosis. " * 60, "answer": "Water moves across a membrane. " * 60,
     "subject": "biology"},
]  # fmt: skip


def sft_config(tmp_path: Path, **recipe) -> SftConfig:
    return from_dict(
        SftConfig,
        {
            "model": {"name_or_path": "builtin:tiny-qwen3", "chat_template": "builtin:qwen3"},
            "data": {"input": str(tmp_path / "qa.parquet"), "rows_per_shard": 2},
            "recipe": {"global_batch_size": 4, "micro_batch_size": 2, "max_length": 128, **recipe},
        },
    )


def test_shards_cover_every_row_once(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(QA), tmp_path / "qa.parquet", row_group_size=2)
    (tmp_path / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA[:3]))
    files = resolve_input_files(SftDataConfig(input=str(tmp_path)), RunDir(str(tmp_path), "r"))
    assert [Path(f).name for f in files] == ["more.jsonl", "qa.parquet"]
    shards = plan_input_shards(files, rows_per_shard=2)
    assert [(s.format, s.row_start, s.row_end) for s in shards] == [
        ("jsonl", 0, 2), ("jsonl", 2, 3), ("parquet", 0, 2), ("parquet", 2, 4), ("parquet", 4, 5),
    ]  # fmt: skip
    assert len({s.shard for s in shards}) == len(shards)
    rows = [r for s in shards for r in read_shard_rows(s, ["qa_id", "nope"]).to_pylist()]
    assert [r["qa_id"] for r in rows] == ["a1", "a2", "a3"] + [r["qa_id"] for r in QA]
    assert all(r["nope"] is None for r in rows)
    assert sum(s.row_end - s.row_start for s in plan_input_shards(files, 2, max_samples=4)) == 4


def test_missing_inputs_are_config_errors(tmp_path: Path) -> None:
    run = RunDir(str(tmp_path), "r")
    with pytest.raises(ConfigError, match="is not a file, folder"):
        resolve_input_files(SftDataConfig(input=str(tmp_path / "nope.parquet")), run)
    with pytest.raises(ConfigError, match="has not finished"):
        resolve_input_files(SftDataConfig(input="stage:finalize"), run)


def test_tokenize_shard_rejects_and_counts(tmp_path: Path, tiny_model_dir: Path) -> None:
    pq.write_table(pa.Table.from_pylist(QA), tmp_path / "qa.parquet")
    sft = sft_config(tmp_path)
    run = RunDir(str(tmp_path / "runs"), "t")
    worker = SftTokenizeShard(sft, run.uri)
    (shard,) = plan_input_shards([str(tmp_path / "qa.parquet")], rows_per_shard=10)
    result = worker(shard.to_dict())
    assert result.in_rows == 5 and result.passed == 3
    assert result.rejected == {"missing_question": 1, "missing_answer": 1}
    assert result.counters["truncated"] == 1  # the osmosis record is longer than 128 tokens
    stage = run.stage("sft_tokenize")
    rows = stage.read_table().to_pylist()
    assert [r["sample_ids"] for r in rows] == [["a1"], ["a2"], ["a5"]]
    assert all(len(r["input_ids"]) == len(r["loss_mask"]) == r["n_tokens"] <= 128 for r in rows)
    assert rows[2]["n_tokens"] == 128 and rows[2]["n_truncated"] == 1
    rejects = stage.read_rejects().to_pylist()
    assert {(r["input_id"], r["reason"]) for r in rejects} == {
        ("a3", "missing_question"),
        ("a4", "missing_answer"),
    }
    assert all(r["source"].endswith(("#row=2", "#row=3")) for r in rejects)


def test_packed_rows_keep_every_conversation(tmp_path: Path, tiny_model_dir: Path) -> None:
    pq.write_table(pa.Table.from_pylist(QA[:2] * 6), tmp_path / "qa.parquet")
    sft = sft_config(tmp_path, packing=True)
    run = RunDir(str(tmp_path / "runs"), "p")
    (shard,) = plan_input_shards([str(tmp_path / "qa.parquet")], rows_per_shard=100)
    result = SftTokenizeShard(sft, run.uri)(shard.to_dict())
    rows = run.stage("sft_tokenize").read_table().to_pylist()
    assert result.passed == 12 and result.out_rows == len(rows) < 12
    assert sum(len(r["seq_lens"]) for r in rows) == 12
    assert all(sum(r["seq_lens"]) == r["n_tokens"] <= 128 for r in rows)


def test_first_fit_decreasing_packing() -> None:
    lengths = [70, 60, 50, 40, 30, 20, 10]
    rows = pack_sequences([("s", [0] * n) for n in lengths], max_length=100)
    sizes = sorted(sum(len(s[1]) for s in row) for row in rows)
    assert sizes == [80, 100, 100]  # 70+30, 60+40, 50+20+10
    with pytest.raises(ValueError, match="exceeds max_length"):
        pack_sequences([("s", [0] * 101)], max_length=100)


def test_padding_waste() -> None:
    assert padding_waste([10, 10, 10, 10], micro_batch_size=2) == 0.0
    assert padding_waste([10, 30], micro_batch_size=2) == pytest.approx(1 - 40 / 60)
    assert padding_waste([10, 30], micro_batch_size=1) == 0.0


def test_collate_masks_labels_and_restarts_positions() -> None:
    batch = {
        "input_ids": np.array([np.array([5, 6, 7, 8, 9]), np.array([1, 2, 3])], dtype=object),
        "loss_mask": np.array([np.array([0, 0, 1, 1, 0]), np.array([0, 1, 1])], dtype=object),
        "seq_lens": np.array([np.array([3, 2]), np.array([3])], dtype=object),
    }
    out = collate(batch, pad_token_id=0, pad_to_multiple_of=8)
    assert out["input_ids"].shape == (2, 8)
    assert out["labels"][0].tolist() == [IGNORE_INDEX, IGNORE_INDEX, 7, 8] + [IGNORE_INDEX] * 4
    assert out["labels"][1].tolist() == [IGNORE_INDEX, 2, 3] + [IGNORE_INDEX] * 5
    # packed: positions restart per conversation, padding forms its own segment, no attention mask
    assert out["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 0, 1, 2]
    assert "attention_mask" not in out
    assert (out["n_tokens"], out["n_padded"]) == (8, 16)
    unpacked = collate({k: v[1:] for k, v in batch.items()}, pad_token_id=0)
    assert unpacked["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]]


def test_packed_conversations_do_not_attend_to_each_other(tiny_model_dir: Path) -> None:
    """Logits of two conversations packed in one row equal their logits computed one by one."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    first, second = [101, 102, 103, 104, 105], [201, 202, 203]
    packed = collate(
        {
            "input_ids": np.array([np.array(first + second)], dtype=object),
            "loss_mask": np.array([np.array([1] * 8)], dtype=object),
            "seq_lens": np.array([np.array([5, 3])], dtype=object),
        },
        pad_token_id=0,
    )
    with torch.no_grad():
        # use_cache=False as in training: with a KV cache transformers does not look for packing.
        together = model(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False
        ).logits[0]
        alone_1 = model(input_ids=torch.tensor([first]), use_cache=False).logits[0]
        alone_2 = model(input_ids=torch.tensor([second]), use_cache=False).logits[0]
    torch.testing.assert_close(together[:5], alone_1, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(together[5:8], alone_2, rtol=1e-4, atol=1e-4)


def test_hf_dataset_input_is_loaded_with_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``hf:<name>`` goes through ``datasets.load_dataset`` (here a local data folder; a hub id
    takes the same path) and is exported once to Parquet for the tokenisation workers."""
    source = tmp_path / "my_qa"
    source.mkdir()
    (source / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA[:2]))
    data = SftDataConfig(input=f"hf:{source}", hf_split="train")
    files = resolve_input_files(data, RunDir(str(tmp_path), "r"), hf_cache_uri=str(tmp_path / "hf_export"))
    assert len(files) == 1 and files[0].endswith(".parquet")
    assert pq.read_table(files[0]).column("question").to_pylist() == [QA[0]["question"], QA[1]["question"]]
    import datasets

    def no_second_download(*args, **kwargs):
        raise AssertionError("a rerun must reuse the export")

    monkeypatch.setattr(datasets, "load_dataset", no_second_download)
    assert (
        resolve_input_files(data, RunDir(str(tmp_path), "r"), hf_cache_uri=str(tmp_path / "hf_export"))
        == files
    )
