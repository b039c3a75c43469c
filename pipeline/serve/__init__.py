"""Serving with Ray Serve LLM: ``config`` (:class:`ServeConfig`), ``app`` (LLMConfig per model,
``build_openai_app``, deploy / wait_ready / teardown) and ``ingress`` (optional API key).
``ray_jobs/serve.py`` deploys it; see docs/eval.md."""
