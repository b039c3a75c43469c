"""Resource hints a stage declares next to its config; ``ray_jobs/`` turns them into Ray arguments."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import check


@dataclass(frozen=True)
class StageResources:
    """Args:
    num_cpus: logical CPUs per worker (a Ray Data actor or task).
    num_gpus: GPUs per worker (0 on CPU stages).
    concurrency: workers at once; ``null`` = as many as the cluster's CPUs allow.
    node_type: a node type of ``cluster.yaml`` (``cpu_worker``, ``gpu_h100x8`` …) to pin the
        stage's workers to; each type advertises a custom resource of that name. ``null``: any node.
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    concurrency: int | None = None
    node_type: str | None = None

    def __post_init__(self) -> None:
        check(self.num_cpus > 0, "resources.num_cpus", "must be > 0")
        check(self.num_gpus >= 0, "resources.num_gpus", "must be >= 0")
        check(self.concurrency is None or self.concurrency > 0, "resources.concurrency", "must be > 0")
