"""cluster.yaml against Ray's own autoscaler schema, and the node types the stage configs name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def _node_types_named(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "node_type" and value:
                yield value
            else:
                yield from _node_types_named(value)
    elif isinstance(data, list):
        for item in data:
            yield from _node_types_named(item)


def test_cluster_yaml_passes_rays_autoscaler_schema():
    from ray.autoscaler._private.util import validate_config

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(config)  # raises ValueError/ValidationError with the offending field
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    gpu = [name for name, t in types.items() if "p5" in t["node_config"]["InstanceType"]]
    assert gpu, "GPU worker types for SFT and vLLM stages"
    for name, node_type in types.items():
        # Every type advertises a custom resource named after it: that is how stages pin to it.
        assert node_type["resources"].get(name), f"{name} must advertise resource {name!r}"
        if name != config["head_node_type"]:
            assert node_type["min_workers"] <= node_type["max_workers"]
    assert any("install.sh gpu" in c for c in config["setup_commands"])
    assert "/home/ubuntu/megascience" in config["file_mounts"]


def test_node_types_named_by_stage_configs_exist():
    types = set(yaml.safe_load((REPO / "cluster.yaml").read_text())["available_node_types"])
    named = {}
    for path in sorted((REPO / "ray_jobs" / "configs").glob("*.yaml")):
        for node_type in _node_types_named(yaml.safe_load(path.read_text())):
            named.setdefault(node_type, []).append(path.name)
    missing = {t: files for t, files in named.items() if t not in types}
    assert not missing, f"configs name node types that cluster.yaml lacks: {missing}"
