"""The Serve application built from a config: several models, CPU and GPU placement, autoscaling, API key.

Building needs no engine (nothing is deployed): it checks what Ray Serve LLM would schedule,
including a GPU model on this GPU-less machine.
"""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, from_dict
from pipeline.serve import app as serve_app
from pipeline.serve.config import ServeConfig
from pipeline.serve.ingress import ApiKeyIngress, key_digest


def _config(tiny_model_dir) -> ServeConfig:
    return from_dict(
        ServeConfig,
        {
            "api_key_env": "MEGASCIENCE_TEST_BUILD_KEY",
            "models": [
                {"model_id": "base", "model_source": str(tiny_model_dir), "dtype": "bfloat16", "max_model_len": 1024},
                {"model_id": "sft", "model_source": str(tiny_model_dir), "device": "gpu", "tensor_parallel_size": 2,
                 "accelerator_type": "H100", "engine_kwargs": {"gpu_memory_utilization": 0.85},
                 "autoscaling": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32}},
            ],
        },
    )  # fmt: skip


def test_llm_configs_for_cpu_and_gpu_models(tiny_model_dir):
    base, sft = serve_app.llm_configs(_config(tiny_model_dir))
    assert base.model_id == "base" and base.placement_group_config == {"bundles": [{"CPU": 1}]}
    assert base.engine_kwargs["enforce_eager"] is True and base.engine_kwargs["max_model_len"] == 1024
    assert sft.accelerator_type == "H100" and sft.placement_group_config is None
    assert (
        sft.engine_kwargs["tensor_parallel_size"] == 2 and sft.engine_kwargs["gpu_memory_utilization"] == 0.85
    )
    assert sft.deployment_config["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 32,
    }


def test_app_with_two_models_and_the_api_key_ingress(ray_cluster, tiny_model_dir, monkeypatch):
    config = _config(tiny_model_dir)
    with pytest.raises(RuntimeError, match="MEGASCIENCE_TEST_BUILD_KEY"):
        serve_app.api_key_from_env(config)
    monkeypatch.setenv("MEGASCIENCE_TEST_BUILD_KEY", "k")
    application = serve_app.build_app(config, serve_app.api_key_from_env(config))
    ingress = application._bound_deployment
    assert issubclass(ingress.func_or_class, ApiKeyIngress)
    assert ingress.init_kwargs["api_key_sha256"] == key_digest("k") != "k"
    assert sorted(ingress.init_kwargs["llm_deployments"]) == ["base", "sft"]


def test_serve_config_rejects_mistakes():
    with pytest.raises(ConfigError, match="max_replicas"):
        from_dict(
            ServeConfig,
            {
                "models": [
                    {
                        "model_id": "a",
                        "model_source": "x",
                        "autoscaling": {"min_replicas": 3, "max_replicas": 2},
                    }
                ]
            },
        )
    with pytest.raises(ConfigError, match="engine_kwargs"):
        from_dict(
            ServeConfig,
            {"models": [{"model_id": "a", "model_source": "x", "engine_kwargs": {"max_model_len": 9}}]},
        )
    with pytest.raises(ConfigError, match="port"):
        from_dict(ServeConfig, {"port": 70000})
