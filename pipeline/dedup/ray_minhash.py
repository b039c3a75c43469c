"""MinHash LSH de-duplication as a Ray Data plan (this stage *is* a distributed Ray construct).

```
read_parquet(id, question, path)                    one block per input shard file
  └ map_batches(bucket_rows)   signatures + band keys, vectorised (pipeline.dedup.minhash); each
                               row also gets a coarse partition of its bucket (and of its id)
  └ groupby(__bpart)           LSH buckets, a few thousand buckets per group, each group handled
      .map_groups              with one Arrow group_by + join: buckets with >1 row give their rows
                               the bucket's lowest id
  └ [bands > 1]                connected components across bands: alternate the min label over
                               buckets (by __bpart) and over ids (by __ipart) until nothing changes
  └ ∪ one marker row per shard
  └ groupby(__shard)           each input shard is rewritten by one task: kept rows (+ cluster_id,
      .map_groups              duplicate_count) → data/, dropped rows → rejects/
```

Why coarse partitions: ``groupby(bucket).map_groups`` calls Python once per bucket, and almost
every bucket holds one row (100k questions → ~86k buckets): that per-group overhead made the stage
slower than single-process datasketch. Grouping by ``hash(bucket) mod P`` keeps every bucket whole
inside one group (so the result is identical) and lets Arrow's vectorised ``group_by`` do the
per-bucket work.

Nothing is collected on the driver except one small result per shard. Only rows that share a
bucket with another row travel past the first groupby. With the reference parameters (one band)
clusters are exactly the buckets (the relation "all 10 minima equal" is transitive) and the
propagation is skipped.

Determinism: a cluster's representative is its lowest id, and each shard's rows are written in
input order, so the output does not depend on block counts, worker counts or shuffle order.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.dedup.config import DedupConfig
from pipeline.dedup.minhash import band_keys, is_too_short, permutations, signatures
from pipeline.rundir import ShardResult, StageDir, make_rejects
from pipeline.schema import require_columns

STAGE = "dedup"

# Rejection reasons.
TOO_SHORT = "too_short"  # fewer than min_length tokens: the reference deletes these outright
MISSING_TEXT = "missing_question"  # null question
NEAR_DUPLICATE = "near_duplicate"  # in a cluster whose lowest id is another row

BUCKET_SCHEMA = pa.schema(
    [("__id", pa.string()), ("__shard", pa.string()), ("__bucket", pa.binary()), ("__bpart", pa.int64()),
     ("__ipart", pa.int64())]
)  # fmt: skip
LABEL_SCHEMA = pa.schema(
    [("__id", pa.string()), ("__shard", pa.string()), ("__bucket", pa.binary()), ("__bpart", pa.int64()),
     ("__ipart", pa.int64()), ("__label", pa.string()), ("__changed", pa.int64())]
)  # fmt: skip
DECISION_SCHEMA = pa.schema(
    [("__id", pa.string()), ("__shard", pa.string()), ("__cluster", pa.string()), ("__size", pa.int64())]
)


def shard_name(path: str) -> str:
    """Output shard name of an input file: its stem (deterministic, independent of workers)."""
    return Path(path).stem


def id_partitions(ids: list[str], parts: int) -> list[int]:
    """Coarse partition of each id (CRC-32 mod ``parts``): stable across processes and runs."""
    return [zlib.crc32(i.encode("utf-8")) % parts for i in ids]


# -- step 1: signatures and buckets ---------------------------------------------------------------
def bucket_rows(
    batch: pa.Table, *, cfg: DedupConfig, perms: Any, bands: int, rows: int, parts: int
) -> pa.Table:
    """(id, shard, bucket, bucket partition, id partition) rows: one per band for every row the
    length filter keeps."""
    require_columns(STAGE, batch.column_names, [cfg.id_column, cfg.column, "path"])
    sig, valid = signatures(batch[cfg.column].to_pylist(), perms, ngram=cfg.ngram, min_length=cfg.min_length)
    ids = [i for i, ok in zip(batch[cfg.id_column].to_pylist(), valid) if ok]
    shards = [shard_name(p) for p, ok in zip(batch["path"].to_pylist(), valid) if ok]
    sig = sig[valid]
    keys = band_keys(sig, bands, rows)
    ipart = id_partitions(ids, parts)
    out: dict[str, list] = {"__id": [], "__shard": [], "__bucket": [], "__bpart": [], "__ipart": []}
    for band, band_key_list in enumerate(keys):
        # The band's first minimum is a uniform 32-bit hash: a free partition key for its bucket.
        bpart = ((sig[:, band * rows].astype(np.uint64) + np.uint64(band)) % np.uint64(parts)).astype(
            np.int64
        )
        prefix = band.to_bytes(2, "big") if bands > 1 else b""  # one column groups every band's buckets
        out["__id"] += ids
        out["__shard"] += shards
        out["__bucket"] += [prefix + k for k in band_key_list]
        out["__bpart"] += bpart.tolist()
        out["__ipart"] += ipart
    return pa.table(out, schema=BUCKET_SCHEMA)


def _check_unique_ids(table: pa.Table) -> None:
    counts = pc.value_counts(table["__id"])
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise ValueError(
            f"[{STAGE}] id {repeated[0]['values'].as_py()!r} occurs on more than one input row; ids must be "
            "unique (was an input file read twice, or the previous stage's output copied?)"
        )


def _min_and_count(table: pa.Table, key: str, value: str) -> pa.Table:
    """Per ``key``: the lowest ``value`` (``__min``) and the row count (``__count``)."""
    agg = table.group_by(key).aggregate([(value, "min"), (value, "count")])
    return agg.select([key, f"{value}_min", f"{value}_count"]).rename_columns([key, "__min", "__count"])


# -- step 2: buckets ------------------------------------------------------------------------------
def buckets_to_decisions(part: pa.Table) -> pa.Table:
    """One band: a bucket is a cluster. Rows of buckets with >1 member get its lowest id and size."""
    agg = _min_and_count(part, "__bucket", "__id")
    dup = agg.filter(pc.greater(agg["__count"], 1))
    if dup.num_rows == 0:
        return DECISION_SCHEMA.empty_table()
    rows = part.select(["__id", "__shard", "__bucket"]).join(dup, "__bucket", join_type="inner")
    _check_unique_ids(rows)
    return pa.table(
        {
            "__id": rows["__id"],
            "__shard": rows["__shard"],
            "__cluster": rows["__min"],
            "__size": rows["__count"],
        },
        schema=DECISION_SCHEMA,
    )


def buckets_to_labels(part: pa.Table) -> pa.Table:
    """Several bands: rows of buckets with >1 member, labelled with the bucket's lowest id."""
    agg = _min_and_count(part, "__bucket", "__id")
    dup = agg.filter(pc.greater(agg["__count"], 1))
    rows = part.join(dup, "__bucket", join_type="inner")
    return pa.table(
        {"__id": rows["__id"], "__shard": rows["__shard"], "__bucket": rows["__bucket"],
         "__bpart": rows["__bpart"], "__ipart": rows["__ipart"], "__label": rows["__min"],
         "__changed": pa.nulls(rows.num_rows, pa.int64()).fill_null(0)},
        schema=LABEL_SCHEMA,
    )  # fmt: skip


def spread_min_label(part: pa.Table, *, key: str) -> pa.Table:
    """Label propagation step: every row takes the lowest label among the rows sharing its ``key``
    (``__bucket`` or ``__id``); ``__changed`` marks the rows whose label fell."""
    lowest = _min_and_count(part, key, "__label").select([key, "__min"])
    rows = part.join(lowest, key, join_type="inner")
    changed = pc.cast(pc.not_equal(rows["__label"], rows["__min"]), pa.int64())
    rows = rows.set_column(rows.schema.get_field_index("__label"), "__label", rows["__min"]).drop_columns(
        ["__min"]
    )
    rows = rows.set_column(rows.schema.get_field_index("__changed"), "__changed", changed)
    return rows.select(LABEL_SCHEMA.names).cast(LABEL_SCHEMA)


def components_to_decisions(part: pa.Table, *, parts: int) -> pa.Table:
    """After propagation (grouped by id partition): one row per id with its component label, and
    the partition of that label, for the size count."""
    per_id = part.group_by("__id").aggregate([("__label", "min"), ("__shard", "min")])
    labels = per_id["__label_min"].to_pylist()
    return pa.table(
        {"__id": per_id["__id"], "__shard": per_id["__shard_min"], "__label": labels,
         "__lpart": pa.array(id_partitions(labels, parts), pa.int64())}
    )  # fmt: skip


def sized_components(part: pa.Table) -> pa.Table:
    """A component's size for each member (grouped by label partition)."""
    counts = part.group_by("__label").aggregate([("__id", "count")]).rename_columns(["__label", "__size"])
    rows = part.join(counts, "__label", join_type="inner")
    _check_unique_ids(rows)
    return pa.table(
        {
            "__id": rows["__id"],
            "__shard": rows["__shard"],
            "__cluster": rows["__label"],
            "__size": rows["__size"],
        },
        schema=DECISION_SCHEMA,
    )


# -- step 3: rewrite every shard ------------------------------------------------------------------
def apply_decisions(
    rows: pa.Table, decisions: dict[str, tuple[str, int]], cfg: DedupConfig, source: str
) -> tuple[pa.Table, pa.Table, ShardResult]:
    """Kept rows (with ``cluster_id`` and ``duplicate_count``) and rejects of one input shard."""
    require_columns(STAGE, rows.column_names, [cfg.id_column, cfg.column])
    result = ShardResult(shard=shard_name(source), in_rows=rows.num_rows)
    keep, cluster_ids, counts, rejects = [], [], [], []
    for i, (row_id, text) in enumerate(zip(rows[cfg.id_column].to_pylist(), rows[cfg.column].to_pylist())):
        reason = detail = None
        if text is None:
            reason, detail = MISSING_TEXT, f"{cfg.column} is null"
        elif is_too_short(text, cfg.min_length):
            reason, detail = TOO_SHORT, f"fewer than {cfg.min_length} tokens"
        elif row_id in decisions and decisions[row_id][0] != row_id:
            cluster, size = decisions[row_id]
            reason, detail = NEAR_DUPLICATE, f"duplicate of {cluster} (cluster of {size})"
        if reason is not None:
            result.rejected[reason] = result.rejected.get(reason, 0) + 1
            rejects.append(
                {
                    "input_id": row_id,
                    "stage": STAGE,
                    "reason": reason,
                    "detail": detail,
                    "source": source,
                    "raw": text,
                }
            )
            continue
        cluster, size = decisions.get(row_id, (row_id, 1))
        keep.append(i)
        cluster_ids.append(cluster)
        counts.append(size)
    kept = rows.take(pa.array(keep, type=pa.int64()))
    for name in ("cluster_id", "duplicate_count"):
        if name in kept.column_names:
            kept = kept.drop_columns([name])
    kept = kept.append_column("cluster_id", pa.array(cluster_ids, type=pa.string()))
    kept = kept.append_column("duplicate_count", pa.array(counts, type=pa.int32()))
    result.passed = result.out_rows = kept.num_rows
    return kept, make_rejects(rejects), result


def write_shard_group(
    group: pa.Table, *, run_uri: str, stage: str, cfg: DedupConfig, inputs: dict[str, str], pending: list[str]
) -> pa.Table:
    """Rewrite one input shard (every group here is one shard) and return its counts as JSON."""
    shard = group["__shard"][0].as_py()
    if shard not in pending:
        return pa.table({"result": pa.array([], type=pa.string())})
    started = time.time()
    decisions = {
        i: (c, s)
        for i, c, s in zip(
            group["__id"].to_pylist(), group["__cluster"].to_pylist(), group["__size"].to_pylist()
        )
        if i is not None
    }
    rows = pq.read_table(inputs[shard], filesystem=StageDir(run_uri, cfg.input_stage).fs)
    kept, rejects, result = apply_decisions(rows, decisions, cfg, inputs[shard])
    result.seconds = round(time.time() - started, 3)
    result.counters = {"clusters_with_duplicates": float(len({c for c, _ in decisions.values()}))}
    StageDir(run_uri, stage).write_shard(result, kept, rejects)
    return pa.table({"result": [json.dumps(result.to_json())]})


SHUFFLE_STRATEGIES = {"sort": "sort_shuffle_pull_based", "hash": "hash_shuffle"}
# Coarse groups per shuffle partition: enough that one group's Arrow work stays small, few enough
# that the per-group Python call is negligible.
PARTS_PER_PARTITION = 8


def default_partitions(n_rows: int) -> int:
    """Shuffle partitions when the config leaves it open: one per ~50k rows, at least one per CPU,
    at most 200 (Ray Data's default of 200 makes 200 tiny tasks for a small run)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(200, max(cpus, -(-n_rows // 50_000))))


# -- the plan -------------------------------------------------------------------------------------
def dedup_shards(run_uri: str, cfg: DedupConfig, stage: str = STAGE) -> list[ShardResult]:
    """De-duplicate the completed output of stage ``cfg.input_stage`` of the run at ``run_uri`` into
    stage ``stage`` of the same run; only shards without a completion marker are written."""
    import ray

    source, target = StageDir(run_uri, cfg.input_stage), StageDir(run_uri, stage)
    files = source.data_files()
    inputs = {shard_name(f): f for f in files}
    if len(inputs) != len(files):
        raise ValueError(
            f"[{STAGE}] two input files of {source.uri} share a name; shard names must be unique"
        )
    pending = sorted(set(inputs) - target.done_shards())
    if not pending:
        return []
    bands, rows = cfg.lsh_params()
    perms = permutations(cfg.num_perm, cfg.seed, used=bands * rows)
    if cfg.num_partitions is None:
        n_rows = sum(pq.read_metadata(f, filesystem=source.fs).num_rows for f in files)
        cfg = dataclasses.replace(cfg, num_partitions=default_partitions(n_rows))
    parts = cfg.num_partitions * PARTS_PER_PARTITION

    ds = ray.data.read_parquet(
        files, filesystem=source.fs, columns=[cfg.id_column, cfg.column], include_paths=True,
        override_num_blocks=max(1, len(files)),
    )  # fmt: skip
    # Derived datasets copy this context, so every groupby below uses the configured shuffle.
    ds.context.shuffle_strategy = SHUFFLE_STRATEGIES[cfg.shuffle]
    buckets = ds.map_batches(
        bucket_rows, batch_format="pyarrow", batch_size=cfg.batch_size,
        fn_kwargs={"cfg": cfg, "perms": perms, "bands": bands, "rows": rows, "parts": parts},
    )  # fmt: skip
    if bands == 1:
        decisions = buckets.groupby("__bpart", num_partitions=cfg.num_partitions).map_groups(
            buckets_to_decisions, batch_format="pyarrow"
        )
    else:
        decisions = connected_components(buckets, cfg, parts)

    markers = ray.data.from_arrow(
        pa.table(
            {"__id": pa.array([None] * len(pending), type=pa.string()), "__shard": pending,
             "__cluster": pa.array([None] * len(pending), type=pa.string()),
             "__size": pa.array([0] * len(pending), type=pa.int64())},
            schema=DECISION_SCHEMA,
        )
    )  # fmt: skip
    written = (
        decisions.union(markers)
        .groupby("__shard", num_partitions=cfg.num_partitions)
        .map_groups(
            write_shard_group, batch_format="pyarrow",
            fn_kwargs={"run_uri": run_uri, "stage": target.stage, "cfg": cfg, "inputs": inputs, "pending": pending},
        )
    )  # fmt: skip
    return [ShardResult.from_json(json.loads(r["result"])) for r in written.iter_rows()]


def connected_components(buckets: Any, cfg: DedupConfig, parts: int) -> Any:
    """Clusters across bands: min-label propagation over the (bucket, id) bipartite graph.

    Each round gives every bucket the lowest label of its rows, then every id the lowest label of
    its buckets; labels only decrease, and a round that changes nothing has reached the component
    minimum everywhere. Rounds needed ~ the component diameter (2–3 for near-duplicate clusters).
    """
    n = cfg.num_partitions
    labels = buckets.groupby("__bpart", num_partitions=n).map_groups(
        buckets_to_labels, batch_format="pyarrow"
    )
    labels = labels.materialize()
    for _ in range(cfg.max_iterations):
        labels = (
            labels.groupby("__ipart", num_partitions=n)
            .map_groups(spread_min_label, batch_format="pyarrow", fn_kwargs={"key": "__id"})
            .groupby("__bpart", num_partitions=n)
            .map_groups(spread_min_label, batch_format="pyarrow", fn_kwargs={"key": "__bucket"})
            .materialize()
        )
        # When the bucket step changes nothing, every bucket and every id is uniform: a fixpoint,
        # and since labels only fall and start at bucket minima, each is its component's lowest id.
        if labels.count() == 0 or (labels.sum("__changed") or 0) == 0:
            break
    else:
        raise RuntimeError(
            f"[{STAGE}] connected components did not converge in {cfg.max_iterations} rounds; "
            "raise dedup.max_iterations"
        )
    return (
        labels.groupby("__ipart", num_partitions=n)
        .map_groups(components_to_decisions, batch_format="pyarrow", fn_kwargs={"parts": parts})
        .groupby("__lpart", num_partitions=n)
        .map_groups(sized_components, batch_format="pyarrow")
    )
