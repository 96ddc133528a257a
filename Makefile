# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Each installs what is missing: a virtualenv (packages through uv, cached in ~/.cache/uv), RocketMQ jars
# (Maven Central) and Kubernetes, etcd and Helm built from their Go modules, all cached in
# ~/.cache/rocketmq-retry-operator by version.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint demo down clean kind

$(BIN)/rocketmq-retry: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,chaos]'
	touch $@

setup: $(BIN)/rocketmq-retry
	$(BIN)/rocketmq-retry setup

lint: $(BIN)/rocketmq-retry
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/rocketmq-retry demo

down: $(BIN)/rocketmq-retry
	$(BIN)/rocketmq-retry local down

clean: down
	rm -rf $(VENV)

# Needs Docker, kind, kubectl and helm on a machine with registry access (not the CI bed): see README.
kind:
	examples/kind/up.sh
