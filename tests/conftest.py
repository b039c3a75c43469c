"""Session fixtures shared by every test: real data, a local Ray cluster, the tiny model.

- ``shared_data``: the real textbooks and benchmark files, from ``$MEGASCIENCE_SHARED_DATA`` or
  ``../shared/data`` beside the repository. Tests that need them skip with the reason when absent,
  so a user's clone still passes.
- ``ray_cluster``: ONE local Ray for the whole session (4 logical CPUs on any machine: Ray Serve
  LLM's ingress deadlocks with 2 — see ../shared/ENV-NOTES.md), no dashboard, its own temp dir.
- ``qwen3_tokenizer_dir`` / ``tiny_model_dir``: the built-in offline Qwen3 tokenizer and the random
  tiny Qwen3 (``pipeline.assets``), built once into a session cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Before anything starts an engine or a Ray worker: no hub, small KV cache, quiet tokenizers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("MEGASCIENCE_CACHE", str(Path(tempfile.gettempdir()) / "megascience-test-cache"))


def shared_data_dir() -> Path:
    return Path(os.environ.get("MEGASCIENCE_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``$MEGASCIENCE_SHARED_DATA``); skips the test when it is absent."""
    path = shared_data_dir()
    if not (path / "textbooks").is_dir() or not (path / "benchmarks").is_dir():
        pytest.skip(
            f"real data not found at {path}: set MEGASCIENCE_SHARED_DATA to a folder with "
            "textbooks/ and benchmarks/ to run this test"
        )
    return path


@pytest.fixture(scope="session")
def textbooks_dir(shared_data: Path) -> Path:
    return shared_data / "textbooks"


@pytest.fixture(scope="session")
def benchmarks_dir(shared_data: Path) -> Path:
    return shared_data / "benchmarks"


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray shared by the session; tests must not shut it down."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    # Short path: Ray's unix sockets live under the temp dir and have a 107-byte limit.
    temp_dir = tempfile.mkdtemp(prefix="ray_t", dir="/tmp")
    ray.init(
        num_cpus=int(os.environ.get("MEGASCIENCE_TEST_NUM_CPUS", "4")),
        include_dashboard=False,
        _temp_dir=temp_dir,
        runtime_env={
            "env_vars": {
                k: os.environ[k]
                for k in (
                    "HF_HUB_OFFLINE",
                    "TRANSFORMERS_OFFLINE",
                    "VLLM_CPU_KVCACHE_SPACE",
                    "TOKENIZERS_PARALLELISM",
                    "MEGASCIENCE_CACHE",
                    "RAY_DATA_DISABLE_PROGRESS_BARS",
                )
            }
        },
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir() -> Path:
    from pipeline import assets

    return Path(assets.resolve(assets.QWEN3_TOKENIZER))


@pytest.fixture(scope="session")
def qwen3_tokenizer(qwen3_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen3_tokenizer_dir))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A random 2-layer Qwen3 (head_dim 32) with the real Qwen tokenizer and chat template."""
    from pipeline import assets

    return Path(assets.resolve(assets.TINY_QWEN3))


@pytest.fixture(scope="module", autouse=True)
def shared_cluster_left_clean(request):
    """After each module: the shared Ray's CPUs are free again (no app, actor or placement group left).

    A test that leaves a Serve app, an actor pool or a placement group behind starves every later
    test of CPUs; this names the module that did it instead of a hang twenty minutes later.
    """
    yield
    import time

    import ray

    if not ray.is_initialized():
        return
    total = ray.cluster_resources().get("CPU", 0.0)
    deadline = time.time() + 60
    while time.time() < deadline:
        free = ray.available_resources().get("CPU", 0.0)
        if free >= total:
            return
        time.sleep(2)
    from ray._private import state

    alive = sorted(
        {a["ActorClassName"] for a in state.actors().values() if a.get("State") == "ALIVE"}  # type: ignore[union-attr]
    )
    groups = [
        (pg_id[:8], g.get("bundles"))
        for pg_id, g in ray.util.placement_group_table().items()
        if g.get("state") != "REMOVED"
    ]
    pytest.fail(
        f"{request.module.__name__} left the shared Ray with {free}/{total} CPUs free; alive actors: "
        f"{alive}; placement groups: {groups}. Tear down what the test started (serve.delete, "
        "ray.kill, remove_placement_group).",
        pytrace=False,
    )
