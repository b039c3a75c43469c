"""Stage S1, QA extraction: mine question–answer pairs from textbook chunks with an LLM.

- ``config``: :class:`ExtractQAConfig` (the ``extract_qa:`` section).
- ``prompts/``: the 14 prompt files, ``qa_extraction_<subject>_<high|low>.<version>.prompt``.
- ``parser``: the robust QA-block parser and the reference-compatible one.
- ``task``: :class:`ExtractQATask` (an :class:`pipeline.llm.LLMTask`) and :data:`QA_SCHEMA`.

Run it with ``python -m ray_jobs.extract_qa --config <run.yaml>`` (see ``docs/llm.md``).
"""

from pipeline.extract.config import ExtractQAConfig
from pipeline.extract.parser import parse_qa_blocks, parse_qa_reference
from pipeline.extract.task import QA_SCHEMA, ExtractQATask

__all__ = ["QA_SCHEMA", "ExtractQAConfig", "ExtractQATask", "parse_qa_blocks", "parse_qa_reference"]
