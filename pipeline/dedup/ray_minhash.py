"""MinHash LSH de-duplication as a Ray Data plan (this stage *is* a distributed Ray construct).

```
read_parquet(id, question, path)                          one block per input shard file
  └ map_batches(bucket_rows)      signatures + band keys, vectorised (pipeline.dedup.minhash)
  └ groupby(__bucket).map_groups  LSH buckets: every bucket with >1 row gives its rows the
                                  bucket's lowest id as label
  └ [bands > 1] label propagation connected components across bands: alternate
                                  groupby(__bucket) and groupby(__id), each taking the min label,
                                  until no label changes
  └ groupby(__label).map_groups   cluster_id = lowest id, duplicate_count = cluster size
  └ ∪ one marker row per shard
  └ groupby(__shard).map_groups   each input shard is rewritten by one task: kept rows (+
                                  cluster_id, duplicate_count) → data/, dropped rows → rejects/
```

Nothing is collected on the driver except one small result per shard. Only rows that share a
bucket with another row travel past the first groupby, so the shuffles after it are small when
duplicates are rare. With the reference parameters (one band) clusters are exactly the buckets
(the relation "all 10 minima equal" is transitive) and the propagation is skipped.

Determinism: a cluster's representative is its lowest id, and each shard's rows are written in
input order, so the output does not depend on block counts, worker counts or shuffle order.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

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

BUCKET_SCHEMA = pa.schema([("__id", pa.string()), ("__shard", pa.string()), ("__bucket", pa.binary())])
LABEL_SCHEMA = pa.schema(
    [
        ("__id", pa.string()),
        ("__shard", pa.string()),
        ("__bucket", pa.binary()),
        ("__label", pa.string()),
        ("__changed", pa.int64()),
    ]
)
DECISION_SCHEMA = pa.schema(
    [("__id", pa.string()), ("__shard", pa.string()), ("__cluster", pa.string()), ("__size", pa.int64())]
)


def shard_name(path: str) -> str:
    """Output shard name of an input file: its stem (deterministic, independent of workers)."""
    return Path(path).stem


# -- step 1: signatures and buckets ---------------------------------------------------------------
def bucket_rows(batch: pa.Table, *, cfg: DedupConfig, perms: Any, bands: int, rows: int) -> pa.Table:
    """(id, shard, bucket) rows of one batch: one per band for every row the length filter keeps."""
    require_columns(STAGE, batch.column_names, [cfg.id_column, cfg.column, "path"])
    sig, valid = signatures(batch[cfg.column].to_pylist(), perms, ngram=cfg.ngram, min_length=cfg.min_length)
    ids = [i for i, ok in zip(batch[cfg.id_column].to_pylist(), valid) if ok]
    shards = [shard_name(p) for p, ok in zip(batch["path"].to_pylist(), valid) if ok]
    keys = band_keys(sig[valid], bands, rows)
    if bands == 1:
        return pa.table({"__id": ids, "__shard": shards, "__bucket": keys[0]}, schema=BUCKET_SCHEMA)
    # One bucket per (band, key): the band number prefixes the key so one column groups them all.
    out_ids, out_shards, out_keys = [], [], []
    for band, band_key_list in enumerate(keys):
        prefix = band.to_bytes(2, "big")
        out_ids.extend(ids)
        out_shards.extend(shards)
        out_keys.extend(prefix + k for k in band_key_list)
    return pa.table({"__id": out_ids, "__shard": out_shards, "__bucket": out_keys}, schema=BUCKET_SCHEMA)


def _check_unique_ids(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise ValueError(
            f"[{STAGE}] id {dup!r} occurs on more than one input row; ids must be unique (was an input "
            "file read twice, or the previous stage's output copied?)"
        )


# -- step 2: buckets ------------------------------------------------------------------------------
def bucket_to_decisions(group: pa.Table) -> pa.Table:
    """One band: the bucket is the cluster. Rows of buckets with >1 member get its lowest id."""
    n = group.num_rows
    if n < 2:
        return DECISION_SCHEMA.empty_table()
    ids = group["__id"].to_pylist()
    _check_unique_ids(ids)
    lowest = min(ids)
    return pa.table(
        {"__id": ids, "__shard": group["__shard"], "__cluster": [lowest] * n, "__size": [n] * n},
        schema=DECISION_SCHEMA,
    )


def bucket_to_labels(group: pa.Table) -> pa.Table:
    """Several bands: rows of buckets with >1 member, labelled with the bucket's lowest id."""
    n = group.num_rows
    if n < 2:
        return LABEL_SCHEMA.empty_table()
    ids = group["__id"].to_pylist()
    lowest = min(ids)
    return pa.table(
        {
            "__id": ids,
            "__shard": group["__shard"],
            "__bucket": group["__bucket"],
            "__label": [lowest] * n,
            "__changed": [0] * n,
        },
        schema=LABEL_SCHEMA,
    )


def spread_min_label(group: pa.Table) -> pa.Table:
    """Label propagation step: every row of the group takes the group's lowest label."""
    labels = group["__label"]
    lowest = pc.min(labels).as_py()
    changed = pc.cast(pc.not_equal(labels, pa.scalar(lowest)), pa.int64())
    group = group.set_column(
        group.schema.get_field_index("__label"), "__label", pa.array([lowest] * group.num_rows, pa.string())
    )
    return group.set_column(group.schema.get_field_index("__changed"), "__changed", changed)


def one_row_per_id(group: pa.Table) -> pa.Table:
    """After propagation an id sits in several buckets with one label: keep one row for it."""
    return group.slice(0, 1).select(["__id", "__shard", "__label"])


def label_to_decisions(group: pa.Table) -> pa.Table:
    """A connected component: its size and lowest id (= its label) for every member."""
    ids = group["__id"].to_pylist()
    _check_unique_ids(ids)
    n = len(ids)
    return pa.table(
        {"__id": ids, "__shard": group["__shard"], "__cluster": [min(ids)] * n, "__size": [n] * n},
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

    ds = ray.data.read_parquet(
        files,
        filesystem=source.fs,
        columns=[cfg.id_column, cfg.column],
        include_paths=True,
        override_num_blocks=max(1, len(files)),
    )
    # Derived datasets copy this context, so every groupby below uses the configured shuffle.
    ds.context.shuffle_strategy = SHUFFLE_STRATEGIES[cfg.shuffle]
    buckets = ds.map_batches(
        bucket_rows,
        batch_format="pyarrow",
        batch_size=cfg.batch_size,
        fn_kwargs={"cfg": cfg, "perms": perms, "bands": bands, "rows": rows},
    )
    if bands == 1:
        decisions = buckets.groupby("__bucket", num_partitions=cfg.num_partitions).map_groups(
            bucket_to_decisions, batch_format="pyarrow"
        )
    else:
        decisions = connected_components(buckets, cfg)

    markers = ray.data.from_arrow(
        pa.table(
            {
                "__id": pa.array([None] * len(pending), type=pa.string()),
                "__shard": pending,
                "__cluster": pa.array([None] * len(pending), type=pa.string()),
                "__size": pa.array([0] * len(pending), type=pa.int64()),
            },
            schema=DECISION_SCHEMA,
        )
    )
    written = (
        decisions.union(markers)
        .groupby("__shard", num_partitions=cfg.num_partitions)
        .map_groups(
            write_shard_group,
            batch_format="pyarrow",
            fn_kwargs={
                "run_uri": run_uri,
                "stage": target.stage,
                "cfg": cfg,
                "inputs": inputs,
                "pending": pending,
            },
        )
    )
    return [ShardResult.from_json(json.loads(r["result"])) for r in written.iter_rows()]


def connected_components(buckets: Any, cfg: DedupConfig) -> Any:
    """Clusters across bands: min-label propagation over the (bucket, id) bipartite graph.

    Each round gives every bucket the lowest label of its rows, then every id the lowest label of
    its buckets; labels only decrease, and a round that changes nothing has reached the component
    minimum everywhere. Rounds needed ~ the component diameter (2–3 for near-duplicate clusters).
    """
    labels = (
        buckets.groupby("__bucket", num_partitions=cfg.num_partitions)
        .map_groups(bucket_to_labels, batch_format="pyarrow")
        .materialize()
    )
    for _ in range(cfg.max_iterations):
        labels = (
            labels.groupby("__id", num_partitions=cfg.num_partitions)
            .map_groups(spread_min_label, batch_format="pyarrow")
            .groupby("__bucket", num_partitions=cfg.num_partitions)
            .map_groups(spread_min_label, batch_format="pyarrow")
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
        labels.groupby("__id", num_partitions=cfg.num_partitions)
        .map_groups(one_row_per_id, batch_format="pyarrow")
        .groupby("__label", num_partitions=cfg.num_partitions)
        .map_groups(label_to_decisions, batch_format="pyarrow")
    )
