"""Synthetic QA records with planted near-duplicates, for the dedup tests and ``bench/dedup.py``.

Questions are built from science templates and a word list, so they look like extracted textbook
questions (15–40 tokens) and rarely collide by chance. A fraction of them are planted copies of an
earlier question: exact copies, case changes (identical after lower-casing), one-word edits (a
near-duplicate that the strict reference setting usually keeps apart) and appended clauses. A few
are shorter than the reference's 5-token minimum.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from pipeline.rundir import stable_id

_TEMPLATES = (
    "Calculate the {a} of a {b} {c} when the {d} is increased from {n1} to {n2} {u} at constant {e}.",
    "Explain why the {a} of {b} {c} depends on the {d} and how the {e} affects it in a {f} system.",
    "A {b} sample of {c} has a {a} of {n1} {u}. Determine its {d} after {n2} seconds of {e} {f}.",
    "Derive an expression for the {a} of a {b} {c} in terms of its {d}, {e} and {f}.",
    "What is the role of the {a} in the {b} {c} pathway, and what happens when the {d} is {e}?",
    "Prove that every {b} {c} with a finite {a} has a {d} bounded by {n1} times its {e}.",
    "Compare the {a} and the {d} of {b} {c} under {e} conditions, given a {f} of {n1} {u}.",
    "A patient presents with {b} {c} and a {a} of {n1} {u}; outline the {d} and the {e} {f}.",
)
_WORD_TEXT = (
    "energy entropy enthalpy velocity momentum pressure temperature density viscosity charge current "
    "voltage resistance capacitance frequency wavelength amplitude phase mass volume concentration "
    "equilibrium constant rate catalyst enzyme substrate protein membrane receptor ligand gene allele "
    "mutation population selection fitness market price demand supply elasticity utility cost revenue "
    "profit matrix vector eigenvalue polynomial integral derivative series limit graph vertex edge tree "
    "algorithm complexity memory cache processor thread lock queue stack heap dose infection lesion "
    "symptom therapy diagnosis tissue organ neuron synapse hormone isotope nucleus electron photon "
    "orbital bond molecule ion acid base solvent solution crystal lattice spin field potential flux"
)
_WORDS = _WORD_TEXT.split(" ")
_UNITS = ("J", "K", "Pa", "m/s", "mol/L", "kg", "s", "V", "A", "Hz", "mg/dL", "N")


def _fill(rng: random.Random) -> str:
    template = rng.choice(_TEMPLATES)
    words = rng.sample(_WORDS, 6)
    return template.format(
        a=words[0], b=words[1], c=words[2], d=words[3], e=words[4], f=words[5],
        n1=rng.randint(1, 999), n2=rng.randint(1, 999), u=rng.choice(_UNITS),
    )  # fmt: skip


def _plant(original: str, kind: str, rng: random.Random) -> str:
    if kind == "exact":
        return original
    if kind == "case":
        return original.upper() if rng.random() < 0.5 else original.lower()
    if kind == "word_edit":
        tokens = original.split(" ")
        tokens[rng.randrange(len(tokens))] = rng.choice(_WORDS)
        return " ".join(tokens)
    if kind == "append":
        return original + " Show your work."
    raise ValueError(kind)


def generate_questions(
    n: int, *, seed: int = 0, duplicate_rate: float = 0.2, short_rate: float = 0.01
) -> Iterator[dict[str, Any]]:
    """``n`` QA records {qa_id, chunk_id, doc_id, subject, standard, question, answer, planted}.

    ``planted`` says how the question was made: "original", "short", or the kind of copy
    ("exact", "case", "word_edit", "append").
    """
    rng = random.Random(seed)
    originals: list[str] = []
    subjects = ("math", "physics", "chemistry", "biology", "medicine", "cs", "economics")
    for i in range(n):
        roll = rng.random()
        if roll < short_rate:
            question, planted = rng.choice(("Define entropy.", "What is ATP?", "Prove it.", "")), "short"
        elif originals and roll < short_rate + duplicate_rate:
            planted = rng.choice(("exact", "exact", "case", "word_edit", "append"))
            question = _plant(rng.choice(originals), planted, rng)
        else:
            question, planted = _fill(rng), "original"
            originals.append(question)
        chunk_id = stable_id("chunk", seed, i // 8)
        yield {
            "qa_id": stable_id(chunk_id, "low", i),
            "chunk_id": chunk_id,
            "doc_id": stable_id("doc", seed, i // 64),
            "subject": subjects[(i // 64) % len(subjects)],
            "standard": "low",
            "question": question,
            "answer": f"Answer {i}: apply the definition and simplify to obtain the result.",
            "planted": planted,
        }
