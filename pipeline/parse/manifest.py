"""The input manifest: which subject, licence and title each PDF has.

A CSV with a header row (``path,subject,licence,title``) or a YAML file, either a list of
``{path, subject, licence, title}`` mappings or a mapping ``glob: subject`` /
``glob: {subject, licence, title}``. ``path`` is a glob matched against the file's path relative
to the input folder (``physics/*.pdf``, ``**/openstax_*``); the first matching entry wins.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.config import ConfigError
from pipeline.schema import SUBJECTS

MANIFEST_NAMES = ("manifest.csv", "manifest.yaml", "manifest.yml")

# Words in file names that name a subject; used only when the manifest says nothing.
SUBJECT_ALIASES: dict[str, str] = {
    "math": "math", "maths": "math", "mathematics": "math", "calculus": "math", "algebra": "math",
    "probability": "math", "stats": "math", "statistics": "math", "geometry": "math",
    "physics": "physics", "phys": "physics", "mechanics": "physics",
    "chemistry": "chemistry", "chem": "chemistry",
    "biology": "biology", "bio": "biology",
    "medicine": "medicine", "medical": "medicine", "med": "medicine", "clinical": "medicine",
    "anatomy": "medicine", "pharmacology": "medicine",
    "cs": "cs", "computer": "cs", "computing": "cs", "algorithms": "cs", "programming": "cs",
    "economics": "economics", "econ": "economics", "microeconomics": "economics",
    "macroeconomics": "economics", "finance": "economics",
}  # fmt: skip


@dataclass(frozen=True)
class ManifestEntry:
    pattern: str
    subject: str | None
    licence: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Manifest:
    entries: tuple[ManifestEntry, ...] = ()
    source: str | None = None

    def lookup(self, relative_path: str) -> ManifestEntry | None:
        for entry in self.entries:
            if fnmatch.fnmatch(relative_path, entry.pattern) or fnmatch.fnmatch(
                relative_path.rsplit("/", 1)[-1], entry.pattern
            ):
                return entry
        return None


def _entry(raw: Mapping[str, Any], where: str) -> ManifestEntry:
    allowed = {"path", "subject", "licence", "license", "title"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown column(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    pattern = str(raw.get("path") or "").strip()
    if not pattern:
        raise ConfigError(f"{where}: 'path' (a glob relative to the input folder) is required")
    subject = (str(raw["subject"]).strip().lower() or None) if raw.get("subject") is not None else None
    if subject is not None and subject not in SUBJECTS:
        raise ConfigError(f"{where}: subject {subject!r} is not one of {', '.join(SUBJECTS)}")
    licence = raw.get("licence", raw.get("license"))
    title = raw.get("title")
    return ManifestEntry(
        pattern=pattern,
        subject=subject,
        licence=str(licence).strip() if licence else None,
        title=str(title).strip() if title else None,
    )


def parse_manifest(text: str, source: str) -> Manifest:
    """Parse manifest text; ``source`` (its file name) picks the format and names errors."""
    entries = []
    if source.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        for line_no, row in enumerate(reader, start=2):
            entries.append(_entry({k.strip(): v for k, v in row.items() if k}, f"{source}:{line_no}"))
    else:
        try:
            data = yaml.safe_load(text) or []
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if isinstance(data, Mapping):
            data = [{"path": k, **(v if isinstance(v, Mapping) else {"subject": v})} for k, v in data.items()]
        if not isinstance(data, list):
            raise ConfigError(f"{source}: expected a list of entries or a mapping glob -> subject")
        for i, raw in enumerate(data):
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{source}: entry {i} must be a mapping, got {raw!r}")
            entries.append(_entry(raw, f"{source}: entry {i}"))
    return Manifest(entries=tuple(entries), source=source)


def infer_subject(relative_path: str) -> str | None:
    """A subject from words in the file or folder names (``chem_uci_…`` → chemistry), else None."""
    for word in re.split(r"[^a-z]+", relative_path.lower()):
        if word in SUBJECT_ALIASES:
            return SUBJECT_ALIASES[word]
    return None
