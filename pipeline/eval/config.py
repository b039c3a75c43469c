"""Configuration of the evaluation stage (section ``evaluate:`` of a run YAML).

```yaml
evaluate:
  benchmarks: [gpqa_diamond, scibench, gsm8k]   # default: all 15 (MMLU evaluated, not averaged)
  data_dir: ../shared/data/benchmarks
  model: tiny-qwen3            # the served model id to evaluate
  tokenizer: builtin:tiny-qwen3   # whose chat template renders the prompts
  endpoint: null               # null: deploy the serve: section; or http://host:port to attach
  option_orders: [reference, shuffled]
  sampling: {max_tokens: 10240}
  concurrency: 8               # request actors
  paper_model: Qwen3-1.7B-M    # adds a comparison with the paper's Table 13 column
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.benchmarks import registry
from pipeline.config import check


@dataclass(frozen=True)
class EvalSamplingConfig:
    """Decoding settings, the reference's by default (greedy, 10,240 new tokens).

    Args:
        temperature: 0 = greedy.
        top_p: nucleus sampling mass.
        max_tokens: new tokens per answer (the reference: 10,240; the served model's
            ``max_model_len`` must hold prompt + this).
        seed: sampling seed sent with each request (``null``: none).
        stop_token_ids: extra stop tokens; ``null`` = the reference's choice by model path
            (Qwen3: <|im_end|>, <|endoftext|>; Llama: <|eot_id|>).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 10240
    seed: int | None = 0
    stop_token_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check(self.temperature >= 0, "sampling.temperature", "must be >= 0")
        check(0 < self.top_p <= 1, "sampling.top_p", "must be in (0, 1]")
        check(self.max_tokens > 0, "sampling.max_tokens", "must be positive")


@dataclass(frozen=True)
class EvalConfig:
    """Args:
    benchmarks: registry names to run (``pipeline.benchmarks.registry.names()``); absent data is
        reported as missing in the report, never skipped silently.
    data_dir: folder with the benchmark files.
    source: ``local`` files only; ``auto`` falls back to the hub by name; ``hub`` only the hub.
    limit: first N items of every subtask (smoke runs); ``null`` = all.
    model: the served model id requests name.
    model_path: the model's path or HF id, for the reference's stop-token choice and the report
        (``null`` = ``tokenizer``).
    tokenizer: tokenizer whose chat template renders prompts (HF id, dir or ``builtin:…``).
    enable_thinking: passed to the chat template (Qwen3: ``false`` = the paper's non-thinking
        mode); ``null`` passes nothing (the reference code's behaviour).
    option_orders: ``reference`` (the reference's fixed order: the paper's numbers) and/or
        ``shuffled`` (per-item seeded); both give two columns side by side.
    shuffle_seed: seed of the shuffled order.
    endpoint: base URL of a running OpenAI-compatible server to attach to; ``null`` deploys the
        run's ``serve:`` section and removes it afterwards.
    api_key_env: variable holding the endpoint's API key (``null``: the serve section's).
    concurrency: request actors sending requests at once.
    actor_num_cpus: logical CPUs each request actor reserves (they wait on HTTP: 0 is fine).
    request_timeout_s: one request's timeout.
    max_retries: retries on 408/429/5xx/timeouts/connection errors, exponential back-off.
    retry_base_s: first back-off wait (doubles each retry, with jitter).
    scoring_workers: scoring subprocesses (0 = inline, no timeout).
    scoring_timeout_s: per-item scoring timeout (the reference: 15 s); a timeout scores 0.
    paper_model: a column of the paper's tables (e.g. ``Qwen3-1.7B-M``) to compare with.
    """

    benchmarks: tuple[str, ...] = tuple(registry.names())
    data_dir: str = "${MEGASCIENCE_BENCHMARKS:-../shared/data/benchmarks}"
    source: Literal["auto", "local", "hub"] = "local"
    limit: int | None = None
    model: str = "tiny-qwen3"
    model_path: str | None = None
    tokenizer: str = "builtin:tiny-qwen3"
    enable_thinking: bool | None = False
    option_orders: tuple[Literal["reference", "shuffled"], ...] = ("reference",)
    shuffle_seed: int = 0
    sampling: EvalSamplingConfig = field(default_factory=EvalSamplingConfig)
    endpoint: str | None = None
    api_key_env: str | None = None
    concurrency: int = 4
    actor_num_cpus: float = 0.0
    request_timeout_s: float = 1800.0
    max_retries: int = 6
    retry_base_s: float = 1.0
    scoring_workers: int = 2
    scoring_timeout_s: float = 15.0
    paper_model: str | None = None

    def __post_init__(self) -> None:
        known = set(registry.names())
        unknown = [b for b in self.benchmarks if b not in known]
        check(not unknown, "evaluate.benchmarks", f"unknown {unknown}; known: {sorted(known)}")
        check(len(self.benchmarks) > 0, "evaluate.benchmarks", "list at least one benchmark")
        check(self.limit is None or self.limit > 0, "evaluate.limit", "must be positive")
        check(len(self.option_orders) > 0, "evaluate.option_orders", "list reference and/or shuffled")
        check(
            len(set(self.option_orders)) == len(self.option_orders), "evaluate.option_orders", "no duplicates"
        )
        check(self.concurrency > 0, "evaluate.concurrency", "must be positive")
        check(self.actor_num_cpus >= 0, "evaluate.actor_num_cpus", "must be >= 0")
        check(self.max_retries >= 0, "evaluate.max_retries", "must be >= 0")
        check(self.scoring_workers >= 0, "evaluate.scoring_workers", "must be >= 0")
        check(self.scoring_timeout_s > 0, "evaluate.scoring_timeout_s", "must be positive")
        check(
            self.endpoint is None or self.endpoint.startswith(("http://", "https://")),
            "evaluate.endpoint",
            "must be an http(s) URL such as http://127.0.0.1:8000, or null to deploy the serve section",
        )
        if self.paper_model is not None:
            from pipeline.eval.paper import PAPER_SCORES

            check(self.paper_model in PAPER_SCORES, "evaluate.paper_model", f"known: {sorted(PAPER_SCORES)}")
