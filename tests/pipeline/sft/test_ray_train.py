"""Epoch datasets of ``pipeline.sft.ray_train``: every row once per epoch, in a seed-determined order."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.sft import ray_train


def _write_rows(folder: Path, n: int, files: int = 3) -> list[str]:
    paths = []
    for f in range(files):
        ids = list(range(f * n // files, (f + 1) * n // files))
        table = pa.table(
            {
                "input_ids": [[i, i + 1] for i in ids],
                "loss_mask": [[0, 1] for _ in ids],
                "seq_lens": [[2] for _ in ids],
                "extra": ids,  # not read
            }
        )
        path = folder / f"part-{f}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def _order(dataset) -> list[int]:
    return [row["input_ids"][0] for row in dataset.iter_rows()]


@pytest.mark.parametrize("in_memory", [True, False])
def test_each_epoch_has_every_row_once_in_a_seeded_order(ray_cluster, tmp_path, monkeypatch, in_memory):
    from ray.data import DataContext

    if not in_memory:
        monkeypatch.setattr(ray_train, "IN_MEMORY_SHUFFLE_MAX_ROWS", 0)
    # fit() hands Ray Train DataConfig(preserve_order=True); read the same way here.
    monkeypatch.setattr(DataContext.get_current().execution_options, "preserve_order", True)
    files = _write_rows(tmp_path, 30)
    first = ray_train.build_epoch_datasets(files, num_epochs=2, seed=7, num_rows=30)
    again = ray_train.build_epoch_datasets(files, num_epochs=2, seed=7, num_rows=30)
    orders = [_order(first[f"epoch_{e}"]) for e in range(2)]
    assert [sorted(o) for o in orders] == [list(range(30))] * 2
    assert orders[0] != orders[1], "epochs must be shuffled differently"
    assert orders == [_order(again[f"epoch_{e}"]) for e in range(2)], "same seed, same stream (exact resume)"
    assert set(first["epoch_0"].schema().names) == {"input_ids", "loss_mask", "seq_lens"}
