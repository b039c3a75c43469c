"""The YAML → frozen dataclass loader, and every YAML the project ships."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from pipeline import run_config
from pipeline.config import ConfigError, check, from_dict, to_dict

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Inner:
    mode: Literal["fast", "exact"] = "fast"
    ratio: float = 0.5

    def __post_init__(self) -> None:
        check(0 <= self.ratio <= 1, "inner.ratio", "must be within [0, 1]")


@dataclass(frozen=True)
class Outer:
    name: str
    count: int = 1
    tags: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    limits: dict[str, int] = field(default_factory=dict)
    optional: int | None = None


def test_builds_nested_frozen_configs():
    cfg = from_dict(
        Outer, {"name": "x", "count": 3, "tags": ["a", "b"], "inner": {"ratio": 1}, "limits": {"k": 2}}
    )
    assert cfg == Outer("x", 3, ("a", "b"), Inner("fast", 1.0), {"k": 2})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.count = 4  # type: ignore[misc]
    assert from_dict(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "x", "cuont": 1},
            "unknown key cuont in Outer; allowed keys: count, inner, limits, name, optional, tags",
        ),
        (
            {"name": "x", "inner": {"mode": "slow"}},
            "inner.mode: 'slow' is not allowed; allowed values: 'fast', 'exact'",
        ),
        ({"name": "x", "count": "3"}, "count: expected an integer, got '3'"),
        ({"name": "x", "count": True}, "count: expected an integer"),
        ({"name": "x", "inner": {"ratio": 2}}, "inner.ratio: must be within"),
        ({}, "name: required key is missing"),
        ({"name": "x", "tags": "a"}, "tags: expected a list"),
    ],
)
def test_errors_name_the_key_and_the_allowed_values(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert message in str(err.value)


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("BUCKET", "s3://books")
    assert from_dict(Outer, {"name": "${BUCKET}/x"}).name == "s3://books/x"
    assert from_dict(Outer, {"name": "${NOPE_UNSET:-dflt}"}).name == "dflt"
    monkeypatch.delenv("NOPE_UNSET", raising=False)
    with pytest.raises(ConfigError, match=r"\$NOPE_UNSET is not set"):
        from_dict(Outer, {"name": "$NOPE_UNSET"})


def test_run_config_sections_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("run: {name: demo, root: /tmp/r}\nparse: {input: books, pages_per_shard: 8}\n")
    cfg = run_config.load(path, {"parse.ocr.engine": "none", "chunk.max_tokens": 512})
    assert cfg.stage("parse").pages_per_shard == 8
    assert cfg.stage("parse").ocr.engine == "none"
    assert cfg.stage("chunk").max_tokens == 512
    assert cfg.fingerprint("parse") != run_config.load(path).fingerprint("parse")
    path.write_text("run: {name: demo}\nparsee: {}\n")
    with pytest.raises(ConfigError, match=r"unknown section 'parsee'; allowed sections: run, .*parse"):
        run_config.load(path)
    path.write_text("parse: {ocr: {engine: abby}}\n")
    with pytest.raises(ConfigError, match=r"run.yaml: parse.ocr.engine: 'abby' is not allowed"):
        run_config.load(path)


SHIPPED = sorted((REPO / "ray_jobs" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_yaml_loads(path, monkeypatch):
    monkeypatch.setenv("MEGASCIENCE_SHARED_DATA", "/data")  # configs may point at real data by env var
    cfg = run_config.load(path)
    for section in cfg.stages:
        assert dataclasses.is_dataclass(cfg.stage(section))


def test_the_project_ships_configs():
    assert SHIPPED, "ray_jobs/configs/ must hold the run YAMLs"
