"""Evaluation on the paper's science benchmarks, scored as the reference evaluator scores them.

Modules (plain Python unless noted):

- ``config``: :class:`EvalConfig` (section ``evaluate:``).
- ``prompts``: prompt families per question type, option order (reference / seeded shuffle),
  chat-template rendering with explicit ``enable_thinking``.
- ``extract``: answer extraction (multiple-choice indicators and option text, boxed math,
  SciBench, OlympicArena), the reference's rules plus flexible fallbacks.
- ``equivalence``: the reference's math/SciBench/MC equivalence and math-verify.
- ``scoring``: :func:`score_output` (strict + flexible) and :class:`ScoringPool` (subprocesses,
  per-item timeout).
- ``client``: completion requests with retries/back-off and the JSON-lines response cache.
- ``actors``: the Ray request actors (the Ray construct of this package).
- ``runner``: plan units → requests → score → prediction rows; ``report``: composite scores,
  averages as the paper computes them, Markdown, PNG; ``paper``: the paper's numbers.

``ray_jobs/evaluate.py`` wires them together; see docs/eval.md.
"""
