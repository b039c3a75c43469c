"""SFT data: input records → tokenised (optionally packed) training rows → padded micro-batches.

Three steps, each plain Python over Arrow tables or NumPy arrays:

1. :func:`plan_input_shards` lists the input as shards of at most ``rows_per_shard`` records
   (Parquet/JSONL files, a finished stage of this run, or an HF dataset exported to Parquet once).
2. :class:`SftTokenizeShard` turns one shard into training rows, rejecting records without a usable
   question or answer (with a reason) and counting truncations; ``ray_jobs/train_sft.py`` runs it
   over all shards with Ray Data and caches the result (``<run>/sft_tokenize/``), so reruns and
   resumed runs never tokenise twice.
3. :func:`collate` pads a micro-batch of rows into tensors on the training worker.

Row schema (:data:`TOKENIZED_SCHEMA`): one row is one training sequence. Unpacked, that is one
conversation; packed, several conversations of one shard laid end to end up to ``max_length``
(first-fit decreasing, :func:`pack_sequences`). ``seq_lens`` keeps the conversation boundaries, so
position ids restart at 0 for each one, and the model then attends within a conversation only
(transformers builds a block-diagonal mask from restarting position ids when no attention mask is
passed; flash-attention uses them as varlen boundaries).

Padding waste — the share of tensor positions that are padding — is what packing buys back;
:func:`padding_waste` measures it for a set of rows and a micro-batch size.
"""

from __future__ import annotations

import bisect
import glob
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import ConfigError, from_dict
from pipeline.rundir import RunDir, ShardResult, StageDir, filesystem, make_rejects, stable_id
from pipeline.sft.chat import build_messages, load_sft_tokenizer, tokenize_conversations
from pipeline.sft.config import SftConfig, SftDataConfig

IGNORE_INDEX = -100  # label of tokens the loss skips (transformers' convention)

TOKENIZED_SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),  # content hash of the sample ids it holds
        ("input_ids", pa.list_(pa.int32())),
        ("loss_mask", pa.list_(pa.int8())),  # 1 = assistant token the loss trains on
        ("seq_lens", pa.list_(pa.int32())),  # conversation lengths; one entry unless packed
        ("sample_ids", pa.list_(pa.string())),
        ("n_tokens", pa.int32()),
        ("n_loss_tokens", pa.int32()),
        ("n_truncated", pa.int32()),  # conversations in the row that were cut to max_length
    ]
)

# Reasons a record is rejected at tokenisation (rejects/*.parquet, stats.json).
REJECT_MISSING_QUESTION = "missing_question"
REJECT_MISSING_ANSWER = "missing_answer"
REJECT_NO_ANSWER_TOKENS = "no_answer_tokens"


# --- 1. input shards ------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputShard:
    """``rows [row_start, row_end)`` of one input file."""

    shard: str
    path: str
    format: str  # "parquet" | "jsonl"
    row_start: int
    row_end: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "path": self.path,
            "format": self.format,
            "row_start": self.row_start,
            "row_end": self.row_end,
        }


def resolve_input_files(data: SftDataConfig, run_dir: RunDir, hf_cache_uri: str | None = None) -> list[str]:
    """The Parquet/JSONL files behind ``data.input`` (see :class:`SftDataConfig`), sorted."""
    spec = data.input
    if spec.startswith("stage:"):
        return _stage_files(spec.removeprefix("stage:"), run_dir)
    if spec.startswith("hf:"):
        if hf_cache_uri is None:
            raise ValueError("hf: inputs need a folder to export the dataset to")
        return export_hf_dataset(spec.removeprefix("hf:"), data.hf_config, data.hf_split, hf_cache_uri)
    if "://" in spec:
        files = _list_uri(spec)
    elif os.path.isdir(spec):
        files = [os.path.join(spec, f) for f in os.listdir(spec)]
    elif any(c in spec for c in "*?["):
        files = glob.glob(spec, recursive=True)
    elif os.path.isfile(spec):
        files = [spec]
    else:
        raise ConfigError(
            f"train_sft.data.input: {spec!r} is not a file, folder, glob, stage:<name> or hf:<dataset>"
        )
    if "://" not in spec:
        files = [os.path.abspath(f) for f in files]
    files = sorted(f for f in files if f.endswith((".parquet", ".jsonl")))
    if not files:
        raise ConfigError(f"train_sft.data.input: no .parquet or .jsonl files found at {spec!r}")
    return files


def _stage_files(name: str, run_dir: RunDir) -> list[str]:
    """``stage:<stage>`` of this run, or ``stage:<run>/<stage>`` of another run under the same root."""
    if "/" in name:
        other_run, _, stage_name = name.partition("/")
        root = run_dir.uri.rsplit("/", 1)[0]
        stage = RunDir(root, other_run).stage(stage_name)
    else:
        stage = run_dir.stage(name)
    if not stage.is_complete():
        raise ConfigError(
            f"train_sft.data.input: stage {stage.stage!r} has not finished in {stage.uri}; run it first "
            "(python -m ray_jobs.run …) or point data.input at a Parquet/JSONL file"
        )
    files = stage.data_files()
    if "://" in stage.uri:  # keep the scheme so every worker opens the right filesystem
        scheme = stage.uri.split("://", 1)[0]
        files = [f"{scheme}://{f}" for f in files]
    return sorted(files)


def _list_uri(uri: str) -> list[str]:
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    scheme = uri.split("://", 1)[0]
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [uri]
    if info.type == pafs.FileType.NotFound:
        raise ConfigError(f"train_sft.data.input: {uri} does not exist")
    return [f"{scheme}://{i.path}" for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))]


def export_hf_dataset(name: str, config_name: str | None, split: str, out_uri: str) -> list[str]:
    """``datasets.load_dataset(name, config_name, split=split)`` written once as Parquet files under
    ``out_uri`` (local or s3://), where every tokenisation worker can read them.

    ``name`` is a hub id or a local folder of data files; the export is reused on reruns.
    """
    import pyarrow.fs as pafs

    fs, path = filesystem(out_uri)
    marker = f"{path}/_EXPORTED"
    if fs.get_file_info(marker).type == pafs.FileType.NotFound:
        import datasets

        try:
            ds = datasets.load_dataset(name, config_name, split=split)
        except Exception as exc:
            raise ConfigError(
                f"train_sft.data.input: datasets.load_dataset({name!r}, {config_name!r}, split={split!r}) "
                f"failed: {exc}"
            ) from exc
        fs.create_dir(path, recursive=True)
        shard_rows = 100_000
        n_files = max(1, -(-len(ds) // shard_rows))
        for i in range(n_files):
            part = ds.shard(num_shards=n_files, index=i, contiguous=True)
            table = part.with_format("arrow")[:]  # respects the shard's row selection
            pq.write_table(table, f"{path}/part-{i:05d}.parquet", filesystem=fs)
        with fs.open_output_stream(marker) as f:
            f.write(
                json.dumps({"name": name, "config": config_name, "split": split, "rows": len(ds)}).encode()
            )
    infos = fs.get_file_info(pafs.FileSelector(path))
    prefix = out_uri.rstrip("/") if "://" in out_uri else ""
    files = sorted(i.path for i in infos if i.path.endswith(".parquet"))
    return [f"{prefix.split('://')[0]}://{f}" if prefix else f for f in files]


def count_rows(path: str, fmt: str) -> int:
    fs, p = filesystem(path)
    if fmt == "parquet":
        return pq.ParquetFile(p, filesystem=fs).metadata.num_rows
    with fs.open_input_stream(p) as f:
        return sum(1 for line in f.read().splitlines() if line.strip())


def plan_input_shards(
    files: Sequence[str], rows_per_shard: int, max_samples: int | None = None
) -> list[InputShard]:
    """Cut the input files into shards of at most ``rows_per_shard`` rows (first ``max_samples`` rows
    only, when set). Shard names derive from file names and offsets, so reruns find the same shards."""
    shards: list[InputShard] = []
    remaining = max_samples if max_samples is not None else float("inf")
    for path in files:
        if remaining <= 0:
            break
        fmt = "parquet" if path.endswith(".parquet") else "jsonl"
        n = int(min(count_rows(path, fmt), remaining))
        remaining -= n
        stem = os.path.basename(path).rsplit(".", 1)[0]
        tag = stable_id(path, length=8)  # two inputs may share a file name
        for start in range(0, n, rows_per_shard):
            end = min(start + rows_per_shard, n)
            shards.append(InputShard(f"{stem}-{tag}-{start:09d}", path, fmt, start, end))
    return shards


def read_shard_rows(shard: InputShard, columns: Sequence[str]) -> pa.Table:
    """The shard's rows, with ``columns`` (those missing from the file come back as nulls)."""
    fs, path = filesystem(shard.path)
    if shard.format == "parquet":
        # Read only the row groups that overlap the shard: a big file is cut into many shards.
        parquet = pq.ParquetFile(path, filesystem=fs)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        groups, first_row, row = [], None, 0
        for g in range(parquet.num_row_groups):
            n = parquet.metadata.row_group(g).num_rows
            if row < shard.row_end and row + n > shard.row_start:
                groups.append(g)
                first_row = row if first_row is None else first_row
            row += n
        table = parquet.read_row_groups(groups, columns=present) if groups else pa.table({})
        table = table.slice(shard.row_start - (first_row or 0), shard.row_end - shard.row_start)
    else:
        with fs.open_input_stream(path) as f:
            lines = [line for line in f.read().decode("utf-8").splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines[shard.row_start : shard.row_end], start=shard.row_start):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{shard.path}: line {i + 1} is not valid JSON ({exc}); fix or drop it"
                ) from None
        table = pa.Table.from_pylist(records) if records else pa.table({})
    n_rows = shard.row_end - shard.row_start
    return pa.table(
        {name: table.column(name) if name in table.column_names else pa.nulls(n_rows) for name in columns}
    )


# --- 2. tokenisation ------------------------------------------------------------------------------
def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        # MegaScience mixture files keep the answer as a one-element list (SPEC §16).
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) and value.strip() else None


class SftTokenizeShard:
    """Tokenise one input shard into training rows and write them (a ``map_shards`` worker).

    Args:
        sft: the ``train_sft`` config.
        run_uri / stage_name: the run directory and the stage folder of the tokenised cache.
    """

    def __init__(self, sft: SftConfig | dict[str, Any], run_uri: str, stage_name: str = "sft_tokenize"):
        self.sft = sft if isinstance(sft, SftConfig) else from_dict(SftConfig, sft, prefix="train_sft")
        self.stage = StageDir(run_uri, stage_name)
        self.tokenizer = load_sft_tokenizer(self.sft.tokenizer_name, self.sft.model.chat_template)

    def __call__(self, shard_dict: dict[str, Any]) -> ShardResult:
        started = time.time()
        shard = InputShard(**{k: shard_dict[k] for k in InputShard.__dataclass_fields__})
        data = self.sft.data
        recipe = self.sft.recipe
        id_col = data.id_column
        columns = [data.question_column, data.answer_column] + ([id_col] if id_col else [])
        table = read_shard_rows(shard, columns)
        questions = table.column(data.question_column).to_pylist()
        answers = table.column(data.answer_column).to_pylist()
        ids = table.column(id_col).to_pylist() if id_col else [None] * table.num_rows

        rejected: Counter[str] = Counter()
        rejects: list[dict[str, Any]] = []
        pending: list[tuple[str, list[dict[str, str]]]] = []
        for offset, (q, a, rid) in enumerate(zip(questions, answers, ids)):
            q_text, a_text = _as_text(q), _as_text(a)
            sample_id = str(rid) if rid is not None else stable_id(q_text, a_text)
            reason = None
            if q_text is None:
                reason, detail = (
                    REJECT_MISSING_QUESTION,
                    f"column {data.question_column!r} is empty or not text",
                )
            elif a_text is None:
                reason, detail = REJECT_MISSING_ANSWER, f"column {data.answer_column!r} is empty or not text"
            if reason:
                rejected[reason] += 1
                rejects.append(
                    {"input_id": sample_id, "stage": "sft_tokenize", "reason": reason, "detail": detail,
                     "source": f"{shard.path}#row={shard.row_start + offset}"}
                )  # fmt: skip
                continue
            pending.append((sample_id, build_messages(q_text, a_text, data.system_prompt)))

        samples: list[tuple[str, list[int], list[int], bool]] = []
        for start in range(0, len(pending), 256):
            batch = pending[start : start + 256]
            tokenized = tokenize_conversations(self.tokenizer, [m for _, m in batch], recipe.max_length)
            for (sample_id, _), conv in zip(batch, tokenized):
                if conv.n_loss_tokens == 0:
                    rejected[REJECT_NO_ANSWER_TOKENS] += 1
                    rejects.append(
                        {"input_id": sample_id, "stage": "sft_tokenize", "reason": REJECT_NO_ANSWER_TOKENS,
                         "detail": "no answer token left after the template and truncation", "source": shard.path}
                    )  # fmt: skip
                    continue
                samples.append((sample_id, conv.input_ids, conv.loss_mask, conv.truncated))

        rows = pack_sequences(samples, recipe.max_length) if recipe.packing else [[s] for s in samples]
        out = rows_to_table(rows)
        n_tokens = int(pc.sum(out.column("n_tokens")).as_py() or 0)
        result = ShardResult(
            shard=shard.shard,
            in_rows=table.num_rows,
            out_rows=out.num_rows,
            passed=len(samples),
            rejected=dict(rejected),
            counters={
                "truncated": float(sum(1 for s in samples if s[3])),
                "tokens": float(n_tokens),
                "loss_tokens": float(pc.sum(out.column("n_loss_tokens")).as_py() or 0),
                "rows": float(out.num_rows),
            },
            seconds=time.time() - started,
        )
        self.stage.write_shard(result, out, make_rejects(rejects))
        return result


def rows_to_table(rows: Iterable[Sequence[tuple[str, list[int], list[int], bool]]]) -> pa.Table:
    """Training rows (each a list of ``(sample_id, input_ids, loss_mask, truncated)``) as Arrow."""
    cols: dict[str, list] = {name: [] for name in TOKENIZED_SCHEMA.names}
    for row in rows:
        sample_ids = [s[0] for s in row]
        cols["row_id"].append(sample_ids[0] if len(row) == 1 else stable_id(*sample_ids))
        cols["input_ids"].append([t for s in row for t in s[1]])
        cols["loss_mask"].append([m for s in row for m in s[2]])
        cols["seq_lens"].append([len(s[1]) for s in row])
        cols["sample_ids"].append(sample_ids)
        cols["n_tokens"].append(sum(len(s[1]) for s in row))
        cols["n_loss_tokens"].append(sum(sum(s[2]) for s in row))
        cols["n_truncated"].append(sum(1 for s in row if s[3]))
    return pa.table(cols, schema=TOKENIZED_SCHEMA)


def pack_sequences(samples: Sequence[Any], max_length: int, length=lambda s: len(s[1])) -> list[list[Any]]:
    """First-fit decreasing bin packing of samples into rows of at most ``max_length`` tokens.

    Longest first; each goes into the fullest row it still fits (best fit, found by bisection over
    the rows' free space), else a new row. Deterministic for a given input order.
    """
    order = sorted(range(len(samples)), key=lambda i: (-length(samples[i]), i))
    rows: list[list[Any]] = []
    free: list[tuple[int, int]] = []  # (free tokens, row index), kept sorted
    for i in order:
        n = length(samples[i])
        if n > max_length:
            raise ValueError(f"sample of {n} tokens exceeds max_length {max_length}; truncate before packing")
        pos = bisect.bisect_left(free, (n, -1))
        if pos < len(free):
            space, row = free.pop(pos)
            rows[row].append(samples[i])
            bisect.insort(free, (space - n, row))
        else:
            rows.append([samples[i]])
            bisect.insort(free, (max_length - n, len(rows) - 1))
    return rows


def padding_waste(row_lengths: Sequence[int], micro_batch_size: int, seed: int = 0) -> float:
    """Share of tensor positions that are padding when rows, in a random order (as training sees
    them), are batched ``micro_batch_size`` at a time and padded to the longest row of each batch."""
    lengths = np.asarray(row_lengths, dtype=np.int64)
    if lengths.size == 0:
        return 0.0
    lengths = lengths[np.random.default_rng(seed).permutation(lengths.size)]
    n_full = lengths.size // micro_batch_size * micro_batch_size
    padded = 0
    if n_full:
        padded += int(lengths[:n_full].reshape(-1, micro_batch_size).max(axis=1).sum() * micro_batch_size)
    if n_full < lengths.size:
        tail = lengths[n_full:]
        padded += int(tail.max() * tail.size)
    return 1.0 - float(lengths.sum()) / padded


# --- 3. micro-batches -----------------------------------------------------------------------------
def collate(batch: dict[str, np.ndarray], pad_token_id: int, pad_to_multiple_of: int = 8) -> dict[str, Any]:
    """Pad a micro-batch of rows (NumPy columns from Ray Data) into model inputs.

    Unpacked rows get ``attention_mask``; packed rows get ``position_ids`` that restart at every
    conversation and no attention mask, which makes transformers attend within conversations only
    (padding then forms its own segment whose labels are ignored). Returns torch tensors plus
    ``seq_lens`` (list of lists) for the FLOP count.
    """
    import torch

    input_ids = batch["input_ids"]
    loss_mask = batch["loss_mask"]
    seq_lens = [list(map(int, s)) for s in batch["seq_lens"]]
    packed = any(len(s) > 1 for s in seq_lens)
    longest = max(len(x) for x in input_ids)
    width = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    n = len(input_ids)
    ids = np.full((n, width), pad_token_id, dtype=np.int64)
    labels = np.full((n, width), IGNORE_INDEX, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    positions = np.zeros((n, width), dtype=np.int64)
    for i, (row_ids, row_mask, lens) in enumerate(zip(input_ids, loss_mask, seq_lens)):
        k = len(row_ids)
        row_ids = np.asarray(row_ids, dtype=np.int64)
        ids[i, :k] = row_ids
        labels[i, :k] = np.where(np.asarray(row_mask) > 0, row_ids, IGNORE_INDEX)
        attention[i, :k] = 1
        positions[i, :k] = np.concatenate([np.arange(length) for length in lens])
        positions[i, k:] = np.arange(width - k)
    out: dict[str, Any] = {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(labels),
        "seq_lens": seq_lens,
        "n_tokens": int(attention.sum()),
        "n_padded": n * width,
    }
    if packed:
        out["position_ids"] = torch.from_numpy(positions)
    else:
        out["attention_mask"] = torch.from_numpy(attention)
    return out
