# The README's two commands are `make quickstart` and `make test`; both install on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install quickstart test test-fast lint bench

$(VENV)/.installed-cpu: pyproject.toml scripts/install.sh
	./scripts/install.sh cpu

install: $(VENV)/.installed-cpu

quickstart: install
	$(PY) -m ray_jobs.run --config ray_jobs/configs/quickstart.yaml

test: install
	$(PY) -m pytest -q --durations=30

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
