"""The one shape of an LLM stage: a task object (prompt builder + parser) and the records it meets.

- :class:`LLMTask` — what a stage defines: how a row becomes chat requests and how completions
  become output rows or a :class:`Reject`.
- :class:`LLMRequest` — one chat request (messages + provenance name + per-request sampling).
- :class:`Completion` — what an engine returned for one request, with token counts and finish
  reason; ``finish_reason == "length"`` means the token limit cut it off.
- :class:`Reject` — why a row produced nothing (reason constant, detail, raw model text).
- :data:`GEN_TYPE` / :func:`provenance` — the ``gen`` column every generated row carries.

Nothing here imports Ray or an engine: tasks are plain Python, tested on literal rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}

# Reject reasons the stage driver itself produces (a task's parser adds its own).
TRUNCATED = "truncated"  # the output hit max_tokens / max_model_len
ENGINE_ERROR = "engine_error"  # the engine failed this one request (e.g. prompt longer than the context)
NO_OUTPUT = "no_output"  # the parser returned no rows and no reason

FINISH_REASONS = ("stop", "length", "error")

# Provenance of a generated field. `sampling` is a JSON string so that every stage's gen has the
# same Arrow type whatever sampling keys it uses.
GEN_TYPE = pa.struct(
    [
        ("model", pa.string()),
        ("engine", pa.string()),  # vllm | openai
        ("prompt", pa.string()),  # prompt name@version (several, comma-joined, for a fan-out)
        ("sampling", pa.string()),  # JSON of the sampling parameters actually sent
        ("prompt_tokens", pa.int64()),  # summed over the row's requests
        ("completion_tokens", pa.int64()),
        ("finish_reason", pa.string()),  # stop | length | error (the worst over the requests)
        ("n_requests", pa.int32()),
    ]
)


@dataclass(frozen=True)
class LLMRequest:
    """One chat request of a row.

    Args:
        messages: OpenAI-style chat messages.
        prompt: provenance name ``name@version`` of the prompt that built it (defaults to the
            task's ``name@version``). Part of the cache key.
        sampling: per-request overrides of the stage's sampling parameters (``{"seed": 3}`` for
            the 3rd of several samples). Part of the cache key.
    """

    messages: tuple[Mapping[str, str], ...]
    prompt: str = ""
    sampling: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("an LLMRequest needs at least one message")
        for m in self.messages:
            if not isinstance(m, Mapping) or set(m) != {"role", "content"}:
                raise ValueError(f"chat messages are {{'role', 'content'}} mappings, got {m!r}")


@dataclass(frozen=True)
class Completion:
    """An engine's answer to one :class:`LLMRequest`.

    ``finish_reason`` is ``stop`` (the model ended, or hit a stop string), ``length`` (cut off by
    ``max_tokens`` or the context length: the text is incomplete) or ``error`` (the engine failed
    this request; ``error`` says why).
    """

    text: str
    finish_reason: Literal["stop", "length", "error"]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    engine: str = ""
    prompt: str = ""
    sampling: str = "{}"  # JSON
    error: str | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def failed(self) -> bool:
        return self.finish_reason == "error"


@dataclass(frozen=True)
class Reject:
    """A row that produced no output. ``reason`` is a short snake_case constant (counted in
    ``stats.json``); ``detail`` is for a human; ``raw`` keeps the model text for inspection."""

    reason: str
    detail: str = ""
    raw: str | None = None


class LLMTask:
    """Base class of an LLM stage's logic. Subclass it and set/override:

    Class attributes:
        name: prompt family name, e.g. ``"qa_extraction"`` (provenance and cache key).
        version: bump it whenever the prompt text or the parser changes meaning, e.g. ``"v1"``.
        id_column: input column that identifies a row (``chunk_id``, ``qa_id``); the rejects'
            ``input_id``.
        input_columns: every column :meth:`expand`, :meth:`unit_id` and :meth:`build_requests`
            read (requests are planned from these columns only); checked at the door.
        on_truncated: ``"reject"`` (default): a row with any ``length`` completion becomes a
            ``truncated`` reject and :meth:`parse` never sees it. ``"parse"``: :meth:`parse` gets
            it and decides (e.g. a 5-way judge that treats one truncated verdict as unparseable).

    Methods:
        expand(row): the work units of an input row (default: the row itself). Extraction runs
            each chunk once per standard, so a chunk becomes two units; accounting counts units.
        unit_id(unit): identifier of a unit (default ``unit[id_column]``).
        build_requests(unit): the chat requests of a unit: a list of messages lists or
            :class:`LLMRequest`; usually one, several for a fan-out (5 candidate pairs, k samples),
            none for a unit that needs no model call (it passes or is rejected by ``parse`` alone,
            e.g. a row that already has a CoT answer, or a chunk of an unselected subject).
        parse(unit, completions): ``completions[i]`` answers ``build_requests(unit)[i]``; return
            the output rows (dicts; ``gen`` is added when absent, null for a unit without
            requests) or a :class:`Reject`.
        output_schema(input_schema): the Arrow schema of the output rows (without ``gen``,
            which the driver appends), so an empty shard has the same columns as a full one.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "v1"
    id_column: ClassVar[str] = "id"
    input_columns: ClassVar[tuple[str, ...]] = ()
    on_truncated: ClassVar[Literal["reject", "parse"]] = "reject"

    @property
    def prompt_id(self) -> str:
        return f"{self.name}@{self.version}"

    def expand(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(row)]

    def unit_id(self, unit: Mapping[str, Any]) -> str:
        return str(unit[self.id_column])

    def build_requests(self, unit: Mapping[str, Any]) -> Sequence[Sequence[Message] | LLMRequest]:
        raise NotImplementedError(f"{type(self).__name__}.build_requests")

    def parse(
        self, unit: Mapping[str, Any], completions: Sequence[Completion]
    ) -> list[dict[str, Any]] | Reject:
        raise NotImplementedError(f"{type(self).__name__}.parse")

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        raise NotImplementedError(f"{type(self).__name__}.output_schema")

    # -- helpers the driver uses ------------------------------------------------------------------
    def requests(self, unit: Mapping[str, Any]) -> list[LLMRequest]:
        """:meth:`build_requests` normalised to :class:`LLMRequest` objects."""
        out = []
        for item in self.build_requests(unit):
            if isinstance(item, LLMRequest):
                out.append(item if item.prompt else LLMRequest(item.messages, self.prompt_id, item.sampling))
            else:
                out.append(LLMRequest(tuple(dict(m) for m in item), self.prompt_id))
        return out


def provenance(completions: Sequence[Completion]) -> dict[str, Any]:
    """The ``gen`` value (:data:`GEN_TYPE`) of a row generated from ``completions``."""
    if not completions:
        raise ValueError("provenance needs at least one completion")
    reasons = [c.finish_reason for c in completions]
    worst = "error" if "error" in reasons else "length" if "length" in reasons else "stop"
    prompts = list(dict.fromkeys(c.prompt for c in completions))
    samplings = list(dict.fromkeys(c.sampling for c in completions))
    return {
        "model": completions[0].model,
        "engine": completions[0].engine,
        "prompt": ",".join(prompts),
        "sampling": samplings[0] if len(samplings) == 1 else json.dumps([json.loads(s) for s in samplings]),
        "prompt_tokens": sum(c.prompt_tokens for c in completions),
        "completion_tokens": sum(c.completion_tokens for c in completions),
        "finish_reason": worst,
        "n_requests": len(completions),
    }
