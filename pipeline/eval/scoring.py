"""Score one output against one presented item; score many in subprocesses with a per-item timeout.

:func:`score_output` returns both scores the report shows:

- **strict** — the reference's extraction and equivalence (SPEC-eval §2), what the paper's numbers
  were computed with;
- **flexible** — strict, or the answer a lenient reading finds (multiple choice: the last committed
  letter; math: math-verify on the output; SciBench: fractions, scientific notation, mantissas;
  MATH500 golds are thereby compared semantically instead of as raw strings).

An extraction that finds nothing counts as wrong in both and is counted separately
(``extraction_failed``). :class:`ScoringPool` runs scoring in worker processes: a sympy
simplification or a backtracking regex that runs past ``timeout_s`` costs that item (scored wrong,
``timed_out``) and the worker is replaced; the run goes on. (The reference used pebble with 15 s;
threads cannot be interrupted, so processes are the only safe container.)
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from pipeline.eval import equivalence as eq
from pipeline.eval import extract as ex


@dataclass
class Score:
    extracted: Any  # strict extraction: a letter, "placeholder", a list of strings, a number string or None
    correct: bool
    extracted_flexible: Any
    correct_flexible: bool
    extraction_failed: bool
    timed_out: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gold_for_scoring(unit: dict[str, Any]) -> Any:
    """MATH's gold is the normalised answer list of its solution; other golds are used as given."""
    if unit["subtask"] == "math" and unit.get("solution"):
        return ex.extract_math_answers(unit["solution"], unit["question"])
    return unit["gold"]


def score_output(unit: dict[str, Any], output: str, *, math_verify_timeout: int | None = 5) -> Score:
    """Score one output. ``unit`` = the presented item as a dict (see ``pipeline.eval.runner.scoring_unit``):
    qtype, subtask, question, options, gold, extraction_letters, solution, meta."""
    qtype = unit["qtype"]
    if qtype == "mc":
        letters, options = unit["extraction_letters"], unit["options"]
        strict = ex.extract_mc(output, letters, options)
        flexible = ex.extract_mc_flexible(output, letters, options)
        return Score(
            extracted=strict,
            correct=eq.mc_equal(strict, unit["gold"]),
            extracted_flexible=flexible,
            correct_flexible=eq.mc_equal(flexible, unit["gold"]),
            extraction_failed=strict == ex.MC_FAILED,
        )
    if qtype == "math":
        gold = gold_for_scoring(unit)
        predictions = ex.extract_math_answers(output, unit["question"])
        correct = eq.eval_math(predictions, gold)
        flexible_answer = ex.last_boxed_raw(output)
        correct_flexible = correct
        if not correct:
            gold_text = gold if isinstance(gold, str) else ", ".join(gold)
            correct_flexible = eq.math_verify_equal(output, gold_text, timeout_s=math_verify_timeout)
        return Score(
            predictions, correct, flexible_answer, correct_flexible, extraction_failed=not predictions
        )
    if qtype == "scibench":
        exponent = int(unit["meta"].get("unit_exponent", 0))
        prediction = ex.extract_scibench(output)
        correct = eq.scibench_equal(prediction, unit["gold"], exponent)
        flexible = correct or eq.scibench_equal_flexible(prediction, unit["gold"], exponent)
        return Score(prediction, correct, prediction, flexible, extraction_failed=prediction is None)
    if qtype == "olympiad":
        prediction = ex.extract_olympiad(output)
        answers = unit["meta"].get("answer") or json.loads(unit["gold"])
        correct = eq.olympiad_equal(prediction, answers)
        return Score(prediction, correct, prediction, correct, extraction_failed=not prediction)
    raise ValueError(f"unknown question type {qtype!r} for {unit.get('item_id')}")


def _score_job(job: tuple[dict[str, Any], str]) -> dict[str, Any]:
    unit, output = job
    return score_output(unit, output).to_dict()


def failed_score(reason: str, timed_out: bool = False) -> dict[str, Any]:
    return Score(
        None, False, None, False, extraction_failed=False, timed_out=timed_out, error=reason
    ).to_dict()


# -- worker processes with a per-task deadline --------------------------------------------------


def _worker_main(conn: Connection, fn: Callable[[Any], Any]) -> None:
    conn.send("ready")  # deadlines start after the (slow, spawned) interpreter is up
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        index, payload = message
        try:
            conn.send((index, True, fn(payload)))
        except Exception:
            conn.send((index, False, traceback.format_exc(limit=3)))


class ScoringPool:
    """``workers`` processes running ``fn`` (a module-level function) with a deadline per task.

    A task past ``timeout_s`` is answered with ``on_timeout()`` and its process is killed and
    replaced; an exception in ``fn`` is answered with ``on_error(traceback)``. ``workers=0`` runs
    inline in this process (no timeout: for tests and tiny runs).
    """

    def __init__(
        self,
        fn: Callable[[Any], Any] = _score_job,
        *,
        workers: int = 2,
        timeout_s: float = 15.0,
        on_timeout: Callable[[], Any] = lambda: failed_score("timeout", timed_out=True),
        on_error: Callable[[str], Any] = lambda tb: failed_score(tb),
    ):
        self.fn, self.workers, self.timeout_s = fn, workers, timeout_s
        self.on_timeout, self.on_error = on_timeout, on_error
        self._ctx = mp.get_context("spawn")  # never fork a process that may hold Ray/vLLM threads
        self._procs: list[tuple[mp.Process, Connection]] = []
        self.timeouts = 0
        self.start_timeout_s = 120.0

    def _spawn(self) -> tuple[mp.Process, Connection]:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.fn), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(self.start_timeout_s) or parent.recv() != "ready":
            proc.kill()
            raise RuntimeError(f"a scoring worker did not start within {self.start_timeout_s:.0f}s")
        return proc, parent

    def __enter__(self) -> ScoringPool:
        self._procs = [self._spawn() for _ in range(self.workers)]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for proc, conn in self._procs:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(None)
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
        self._procs = []

    def map(self, payloads: Iterable[Any], progress: Callable[[int, int], None] | None = None) -> list[Any]:
        """Results in input order."""
        jobs = list(payloads)
        results: list[Any] = [None] * len(jobs)
        if self.workers == 0:
            for i, job in enumerate(jobs):
                try:
                    results[i] = self.fn(job)
                except Exception:
                    results[i] = self.on_error(traceback.format_exc(limit=3))
            return results
        if not self._procs:
            self.__enter__()
        pending = list(range(len(jobs)))[::-1]
        busy: dict[int, tuple[int, float]] = {}  # slot -> (job index, deadline)
        done = 0
        while pending or busy:
            for slot in range(len(self._procs)):
                if slot not in busy and pending:
                    index = pending.pop()
                    self._procs[slot][1].send((index, jobs[index]))
                    busy[slot] = (index, time.monotonic() + self.timeout_s)
            conns = {self._procs[slot][1]: slot for slot in busy}
            next_deadline = min(deadline for _, deadline in busy.values())
            ready = wait(list(conns), timeout=max(0.0, next_deadline - time.monotonic()))
            for conn in ready:
                slot = conns[conn]
                try:
                    index, ok, value = conn.recv()
                except (EOFError, OSError):  # the worker died (e.g. out of memory): treat as an error
                    index, ok, value = busy[slot][0], False, "scoring worker died"
                    self._replace(slot)
                results[index] = value if ok else self.on_error(value)
                del busy[slot]
                done += 1
            now = time.monotonic()
            for slot, (index, deadline) in list(busy.items()):
                if now >= deadline:
                    self._replace(slot)
                    results[index] = self.on_timeout()
                    self.timeouts += 1
                    del busy[slot]
                    done += 1
            if progress:
                progress(done, len(jobs))
        return results

    def _replace(self, slot: int) -> None:
        proc, conn = self._procs[slot]
        proc.kill()
        proc.join(timeout=2)
        conn.close()
        self._procs[slot] = self._spawn()
