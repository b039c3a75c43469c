"""The benchmark registry: the paper's 15 science benchmarks, shared by evaluation and decontamination.

Public API (stable; later changes are additive only)::

    from pipeline.benchmarks import registry

    registry.names()                      # ['mmlu', 'mmlu_pro', 'gpqa_diamond', ..., 'math500'] (15)
    registry.names(include_unreported=False)  # the 14 the paper reports (MMLU left out)
    bench = registry.get("scibench")      # Benchmark: display, category, subtasks (3 for SciBench)
    items = registry.load("scibench", data_dir)            # list[BenchmarkItem], all subtasks
    items = registry.load_subtask("scibench-physics", data_dir, limit=10)
    present, missing = registry.availability(data_dir)      # names present; MissingBenchmark list
    pool = registry.decontamination_pool(data_dir)          # DecontaminationPool
    pool.items      # list[PoolItem(benchmark, item_id, question)] for every present pool file
    pool.missing    # list[MissingBenchmark]: key, expected files, hub name; .message() says how to fix
    pool.to_arrow() # pa.Table {benchmark, item_id, question}

:class:`BenchmarkItem` fields: ``benchmark`` (registry name), ``subtask`` (reference config key,
e.g. ``"scibench-physics"``), ``item_id`` (``<subtask>-<index in file>``, the same id in
evaluation and in the decontamination pool), ``question`` (the text decontamination embeds),
``options`` (reference order), ``gold`` (letter / answer string), ``qtype`` (``mc``, ``math``,
``scibench``, ``olympiad``), ``solution`` and ``meta``.

Data: ``data_dir`` holds files named as in the reference's decontamination folder
(``gpqa_diamond.json``, ``math500.jsonl``…; SPEC-pipeline §15) or as in its evaluation repository
(``gpqa/gpqa_diamond.json``…). ``source="auto"`` falls back to the Hugging Face hub by name where a
faithful hub copy exists and ``HF_HUB_OFFLINE`` is not set. A benchmark whose data is absent raises
:class:`BenchmarkMissingError` (``load``) or is listed in ``missing`` (``availability``,
``decontamination_pool``); it is never skipped silently.
"""

from pipeline.benchmarks import registry
from pipeline.benchmarks.registry import (
    BENCHMARKS,
    POOL,
    availability,
    decontamination_pool,
    get,
    load,
    load_subtask,
    names,
    subtask,
)
from pipeline.benchmarks.types import (
    POOL_SCHEMA,
    QUESTION_TYPES,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    BenchmarkMissingError,
    DecontaminationPool,
    HubSource,
    MissingBenchmark,
    PoolItem,
    Subtask,
)

__all__ = [
    "BENCHMARKS",
    "POOL",
    "POOL_SCHEMA",
    "QUESTION_TYPES",
    "Benchmark",
    "BenchmarkFormatError",
    "BenchmarkItem",
    "BenchmarkMissingError",
    "DecontaminationPool",
    "HubSource",
    "MissingBenchmark",
    "PoolItem",
    "Subtask",
    "availability",
    "decontamination_pool",
    "get",
    "load",
    "load_subtask",
    "names",
    "registry",
    "subtask",
]
