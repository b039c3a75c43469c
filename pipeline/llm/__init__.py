"""The one shape of every LLM stage: prompt builder → engine → parser.

Extraction, refinement, CoT judge and distillation, quality filter, decontamination judge,
reference answers and difficulty grading differ only in their prompt and their parser. Each is an
:class:`LLMTask`; one generic driver (``ray_jobs.llm_stage.run_llm_stage``) runs any
of them on Ray Data LLM with vLLM or an OpenAI-compatible endpoint, with provenance, accounting,
a response cache and resumability.

Modules
-------
- ``config``: :class:`EngineConfig` (``vllm`` | ``openai``), :class:`SamplingConfig`,
  :class:`GuidedDecodingConfig`, and :class:`LLMStageConfig`, the base of every LLM stage config.
- ``task``: :class:`LLMTask`, :class:`LLMRequest`, :class:`Completion`, :class:`Reject`,
  :data:`GEN_TYPE` and :func:`provenance` (the ``gen`` column).
- ``prompts``: versioned prompt files (``<name>.<version>.prompt``), :data:`SYSTEM_PROMPT`.
- ``stage``: pure logic around the engine: request planning with cache keys, and
  :func:`finish_shard` (truncation/error policy, parsing, accounting).
- ``cache``: :class:`CompletionCache`, completions kept in ``<run>/_llm_cache/<stage>/``.
- ``ray_engine``: the Ray Data LLM processors (the only module here that imports Ray).

How to define a new LLM stage
-----------------------------
1. A config: subclass :class:`LLMStageConfig` (it brings ``input_stage``, ``engine``,
   ``sampling``, ``system_prompt``, ``cache``, ``parse_workers``) and add your fields. Register
   the section in ``pipeline/run_config.py:STAGE_CONFIGS``::

       @dataclass(frozen=True)
       class QualityFilterConfig(LLMStageConfig):
           input_stage: str = "cot"
           prompt_version: str = "v1"

2. A prompt file in your package, ``pipeline/<area>/prompts/quality_filter.v1.prompt``, with
   ``<QUESTION>``-style placeholders (package data is picked up by ``pyproject.toml``).

3. A task: subclass :class:`LLMTask`::

       class QualityFilterTask(LLMTask):
           name = "quality_filter"
           version = "v1"            # bump when the prompt or the parser changes meaning
           id_column = "qa_id"
           input_columns = ("qa_id", "question", "answer")   # all that build_requests reads

           def __init__(self, config: QualityFilterConfig):
               self.prompt = load_prompt("pipeline.curate.prompts", "quality_filter", config.prompt_version)
               self.system = SYSTEM_PROMPT if config.system_prompt else None

           def build_requests(self, row):           # -> list of message lists (or LLMRequest)
               return [self.prompt.messages(self.system, QUESTION=row["question"], ANSWER=row["answer"])]

           def parse(self, row, completions):       # completions[i] answers request i
               verdict = parse_verdict(completions[0].text)
               if verdict is None:
                   return Reject("unparseable_verdict", "no Decision: YES/NO", completions[0].text)
               if not verdict:
                   return Reject("filtered_no", "judge said NO", completions[0].text)
               return [{**row, "filter_output": completions[0].text}]

           def output_schema(self, input_schema):   # `gen` is appended by the driver
               return input_schema.append(pa.field("filter_output", pa.string()))

   - Fan-out: return several requests (decontamination: 5 candidate pairs; difficulty grading:
     ``LLMRequest(messages, sampling={"seed": i})`` for k samples); ``parse`` gets all k
     completions of the row together, in request order, and returns the row's outputs.
   - One row, several work units: override ``expand(row)`` (extraction: one unit per standard)
     and ``unit_id(unit)``; accounting (in = passed + rejected) counts units.
   - Truncation: a completion that hit the token limit has ``finish_reason == "length"``; by
     default the row becomes a ``truncated`` reject with the raw text and ``parse`` never sees
     it. Set ``on_truncated = "parse"`` to handle it yourself (e.g. count it as unparseable).
   - Engine failures of one request (prompt longer than the context) become ``engine_error``
     rejects; an engine that is down fails the job, and its rerun resumes from the cache.
   - Every output row gets ``gen`` (:data:`GEN_TYPE`: model, engine, prompt name@version,
     sampling JSON, prompt/completion tokens, finish reason) unless ``parse`` sets it; a stage that
     adds a second generated field can store ``provenance(completions)`` under its own column.

4. The job, ``ray_jobs/quality_filter.py``::

       args, config = stage_cli(__doc__)
       connect(config, args.address)
       run_llm_stage(config, "quality_filter", QualityFilterTask(config.stage("quality_filter")),
                     force=args.force)

5. Tests: the task on literal rows and literal ``Completion`` objects (``parse`` is pure), the
   stage logic with a scripted engine (``run_llm_stage(..., engine_fn=...)``, see
   ``tests/pipeline/llm/``), and one small real-engine run where it matters.

Engines and sampling are config, per stage (``ray_jobs/configs/extract_*.yaml`` show both)::

    engine: {kind: vllm, model: meta-llama/Llama-3.3-70B-Instruct, tensor_parallel_size: 4,
             concurrency: 2, batch_size: 64, max_model_len: 24576}
    engine: {kind: openai, model: gpt-4o-mini, base_url: https://api.openai.com/v1,
             api_key_env: OPENAI_API_KEY, concurrency: 8, max_retries: 5, timeout_s: 300}
    sampling: {temperature: 0.0, top_p: 0.9, max_tokens: 16000}
"""

from pipeline.llm.config import EngineConfig, GuidedDecodingConfig, LLMStageConfig, SamplingConfig
from pipeline.llm.prompts import SYSTEM_PROMPT, PromptTemplate, load_prompt
from pipeline.llm.task import (
    ENGINE_ERROR,
    GEN_TYPE,
    NO_OUTPUT,
    TRUNCATED,
    Completion,
    LLMRequest,
    LLMTask,
    Message,
    Reject,
    provenance,
)

__all__ = [
    "ENGINE_ERROR",
    "GEN_TYPE",
    "NO_OUTPUT",
    "SYSTEM_PROMPT",
    "TRUNCATED",
    "Completion",
    "EngineConfig",
    "GuidedDecodingConfig",
    "LLMRequest",
    "LLMStageConfig",
    "LLMTask",
    "Message",
    "PromptTemplate",
    "Reject",
    "SamplingConfig",
    "load_prompt",
    "provenance",
]
