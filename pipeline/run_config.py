"""One YAML file configures a whole run: a ``run:`` section plus one section per stage.

```yaml
run:
  name: quickstart          # runs/<name>/ holds every stage's output
  root: runs                # local path or s3://bucket/prefix
parse:
  input: data/sample_pdfs
chunk:
  tokenizer: {name_or_path: builtin:qwen3-tokenizer}
```

Each stage module owns its frozen config dataclass; :data:`STAGE_CONFIGS` maps a section name to
it (as an import path, so loading a config never imports vLLM or torch). Every section present is
validated when the file is loaded, so a typo in the SFT section fails before parsing starts. A
missing section means that stage's defaults.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline import config as cfg
from pipeline.rundir import RunDir

# section name -> "module:Class". Stages add themselves here.
STAGE_CONFIGS: dict[str, str] = {
    "parse": "pipeline.parse.config:ParseConfig",
    "chunk": "pipeline.chunk.config:ChunkConfig",
    "train_sft": "pipeline.sft.config:SftConfig",
    "extract_qa": "pipeline.extract.config:ExtractQAConfig",
    "serve": "pipeline.serve.config:ServeConfig",
    "evaluate": "pipeline.eval.config:EvalConfig",
    "dedup": "pipeline.dedup.config:DedupConfig",
    "refine": "pipeline.curate.config:RefineConfig",
    "cot_judge": "pipeline.curate.config:CotJudgeConfig",
    "cot_distill": "pipeline.curate.config:CotDistillConfig",
    "filter_qa": "pipeline.curate.config:FilterConfig",
    "reference_answer": "pipeline.curate.config:ReferenceAnswerConfig",
    "finalize": "pipeline.curate.config:FinalizeConfig",
    "decontam_retrieve": "pipeline.decontam.config:DecontamRetrieveConfig",
    "decontaminate": "pipeline.decontam.config:DecontaminateConfig",
    "mixture": "pipeline.mixture.config:MixtureConfig",
    "mixture_decontaminate": "pipeline.mixture.config:MixtureDecontaminateConfig",
    "mixture_student": "pipeline.mixture.config:StudentAnswerConfig",
    "mixture_grade": "pipeline.mixture.config:GradeConfig",
}


# What `stage:<name>` points at inside a stage folder, where it is not the data folder.
STAGE_ARTIFACTS: dict[str, str] = {"train_sft": "model"}


@dataclass(frozen=True)
class RunSection:
    """Where a run lives and which Ray cluster runs it.

    Args:
        name: the run's folder under ``root``.
        root: local directory or ``pyarrow.fs`` URI (``s3://bucket/prefix``).
        ray_address: ``null`` joins the cluster in ``$RAY_ADDRESS`` (set by ``ray job submit``) or
            starts a local one; ``auto`` joins a running local cluster; ``ray://host:10001`` etc.
        num_cpus: logical CPUs for a local cluster started by the job (``null``: all cores).
        retries: how often ``ray_jobs.run`` retries a failing stage before stopping the chain.
        runtime_env: extra Ray ``runtime_env`` for stages submitted with ``ray_jobs.run --submit``
            (``pip``/``uv`` packages, ``env_vars``); the working directory is added by the runner.
    """

    name: str = "default"
    root: str = "runs"
    ray_address: str | None = None
    num_cpus: int | None = None
    retries: int = 1
    runtime_env: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cfg.check(bool(self.name) and "/" not in self.name, "run.name", "must be a non-empty folder name")
        cfg.check(self.num_cpus is None or self.num_cpus > 0, "run.num_cpus", "must be positive")
        cfg.check(self.retries >= 0, "run.retries", "must be >= 0")
        allowed = {"pip", "uv", "conda", "env_vars", "py_modules", "excludes", "working_dir", "container"}
        unknown = sorted(set(self.runtime_env) - allowed)
        cfg.check(
            not unknown, "run.runtime_env", f"unknown key(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
        )


def stage_config_class(section: str) -> type:
    if section not in STAGE_CONFIGS:
        raise cfg.ConfigError(
            f"unknown section {section!r}; allowed sections: run, {', '.join(sorted(STAGE_CONFIGS))}"
        )
    module, _, name = STAGE_CONFIGS[section].partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    stages: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the YAML file it came from, for error messages

    def stage(self, section: str) -> Any:
        """The frozen config of ``section`` (its defaults when the YAML has no such section)."""
        if section in self.stages:
            return self.stages[section]
        return cfg.from_dict(stage_config_class(section), {}, prefix=section)

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.run.root, self.run.name)

    def resolve_ref(self, value: str) -> str:
        """``stage:<name>`` → what that stage produced in this run (``stage:train_sft`` → its exported
        Hugging Face model folder; other stages → their data folder); anything else unchanged."""
        if not value.startswith("stage:"):
            return value
        name = value.removeprefix("stage:")
        stage = self.run_dir.stage(name)
        return f"{stage.uri}/{STAGE_ARTIFACTS.get(name, 'data')}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run": cfg.to_dict(self.run)}
        for section, value in self.stages.items():
            out[section] = cfg.to_dict(value)
        return out

    def fingerprint(self, section: str) -> str:
        """Hash of one stage's resolved config: a finished stage rerun with other settings is caught."""
        payload = json.dumps(cfg.to_dict(self.stage(section)), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def with_stage(self, section: str, **changes: Any) -> RunConfig:
        """A copy with some fields of one stage replaced (CLI overrides, tests)."""
        stages = dict(self.stages)
        stages[section] = dataclasses.replace(self.stage(section), **changes)
        return dataclasses.replace(self, stages=stages)


def from_dict(data: dict[str, Any], source: str | None = None) -> RunConfig:
    data = dict(data)
    run = cfg.from_dict(RunSection, data.pop("run", None) or {}, prefix="run")
    stages = {}
    for section, body in data.items():
        stages[section] = cfg.from_dict(stage_config_class(section), body or {}, prefix=section)
    return RunConfig(run=run, stages=stages, source=source)


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load and validate a run YAML. ``overrides`` are dotted keys, e.g. ``{"run.name": "x"}``."""
    data = cfg.read_yaml(path)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}  # absent, or an empty section written as `parse:` (None)
            node = node[key]
        node[leaf] = value
    try:
        return from_dict(data, source=str(path))
    except cfg.ConfigError as exc:
        raise cfg.ConfigError(f"{path}: {exc}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """``key.sub=value`` from the command line; the value is read as YAML (numbers, true, lists)."""
    if "=" not in text:
        raise cfg.ConfigError(f"override {text!r} must look like section.key=value")
    key, _, raw = text.partition("=")
    return key.strip(), yaml.safe_load(raw)
