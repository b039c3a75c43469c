"""Versioned prompt files and the chat messages built from them.

A prompt lives in a package folder as ``<name>.<version>.prompt`` (plain text, UTF-8), e.g.
``pipeline/extract/prompts/qa_extraction_math_high.v1.prompt``. Placeholders are written
``<NAME>`` and filled by plain string replacement (no escaping, as in the reference pipeline), so
a chunk containing braces or backslashes goes in verbatim. Changing a prompt's meaning means a new
file with a new version; the old one stays, so runs that used it stay reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from pipeline.llm.task import Message

# One fixed, generic system sentence for every stage (our wording; the reference uses a similar
# generic assistant sentence and omits it only for CoT distillation).
SYSTEM_PROMPT = (
    "You are a careful, knowledgeable and honest assistant. Follow the instructions exactly and "
    "answer in the format that is asked for."
)

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt file's text with its name and version."""

    name: str
    version: str
    text: str

    @property
    def prompt_id(self) -> str:
        """``name@version``: what provenance records and the response cache keys on."""
        return f"{self.name}@{self.version}"

    @property
    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.text))

    def render(self, **values: str) -> str:
        """Fill ``<NAME>`` placeholders with ``values`` (``NAME=...``); every placeholder must be given."""
        missing = self.placeholders - set(values)
        if missing:
            raise KeyError(f"prompt {self.prompt_id}: no value for placeholder(s) {sorted(missing)}")
        text = self.text
        for key, value in values.items():
            text = text.replace(f"<{key}>", value)
        return text

    def messages(self, system_prompt: str | None = SYSTEM_PROMPT, **values: str) -> list[Message]:
        """``[system, user]`` chat messages (``[user]`` when ``system_prompt`` is None)."""
        user = {"role": "user", "content": self.render(**values)}
        if system_prompt is None:
            return [user]
        return [{"role": "system", "content": system_prompt}, user]


def load_prompt(package: str, name: str, version: str) -> PromptTemplate:
    """Load ``<package>/<name>.<version>.prompt`` shipped as package data.

    Args:
        package: the dotted package holding the file, e.g. ``"pipeline.extract.prompts"``.
        name: prompt name without version, e.g. ``"qa_extraction_math_high"``.
        version: e.g. ``"v1"``.
    """
    filename = f"{name}.{version}.prompt"
    try:
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    except FileNotFoundError:
        available = sorted(p.name for p in resources.files(package).iterdir() if p.name.endswith(".prompt"))
        raise FileNotFoundError(
            f"prompt file {filename} not found in package {package}; available: {available}"
        ) from None
    return PromptTemplate(name=name, version=version, text=text.strip() + "\n")
