# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Each installs what is missing: a virtualenv (packages through uv, cached in ~/.cache/uv), RocketMQ jars
# (Maven Central) and Kubernetes, etcd and Helm built from their Go modules, all cached in
# ~/.cache/rocketmq-retry-operator by version.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint demo down clean kind kind-down

# The three distributions (operator, chaos, lab) editable, and the tools of the top-level pyproject's `test` extra.
$(BIN)/rocketmq-retry: pyproject.toml operator/pyproject.toml chaos/pyproject.toml lab/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ./operator -e ./chaos -e ./lab \
		-r pyproject.toml --extra test
	touch $@

setup: $(BIN)/rocketmq-retry
	$(BIN)/rocketmq-retry setup

lint: $(BIN)/rocketmq-retry
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/rocketmq-retry demo

down: $(BIN)/rocketmq-retry
	$(BIN)/rocketmq-retry local down

clean: down
	rm -rf $(VENV)

# Chaos in a kind cluster from local parts only: a Docker engine (Debian's, started here when none answers),
# images built here, the chart, the sample policy and in-cluster chaos Jobs; exits 1 when a verdict fails.
kind: setup
	$(BIN)/rocketmq-retry kind up

# Removes the lab's cluster and stops the engine `make kind` started, nothing else.
kind-down: $(BIN)/rocketmq-retry
	$(BIN)/rocketmq-retry kind down
