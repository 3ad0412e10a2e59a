# render-signal — the verbs people expect. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PYTEST_ARGS ?=

.PHONY: help install run test lint format typecheck pytest worker-test bench compose-test screenshots clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install Python (uv workspace) and Worker (npm) dependencies
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --frozen
	@if command -v npm >/dev/null && [ -f deploy/r2-worker/package-lock.json ]; then \
	  (cd deploy/r2-worker && npm ci --no-audit --no-fund --loglevel=error); \
	else echo "npm or deploy/r2-worker/package-lock.json missing: Worker tests will be skipped"; fi

run: install ## Start Redis + the four services locally (dev mode on first run)
	$(UV) run render-signal up

lint: ## ruff lint + format check
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: ## Apply ruff formatting and autofixes
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

typecheck: ## mypy, strict on every src/ tree and the compose test driver
	$(UV) run mypy libs/common/src libs/devstack/src services/ingest/src services/offload/src services/notify/src services/gateway/src deploy/compose

worker-test: ## The R2 Worker's own tests, in workerd
	@if [ -d deploy/r2-worker/node_modules ]; then cd deploy/r2-worker && npm test; \
	elif [ "$${CI:-}" = "true" ]; then echo "Worker dependencies missing in CI" >&2; exit 1; \
	else echo "SKIP worker tests: run make install (needs npm)"; fi

pytest: ## Python tests (unit + integration against real components)
	$(UV) run pytest $(PYTEST_ARGS)

test: install lint typecheck worker-test pytest ## Everything CI runs

bench: install ## Benchmarks with same-run baselines (JSON + Markdown in bench/results/)
	$(UV) run python -m bench.run

compose-test: ## Build the images, run the compose stack (Docker or podman), mail through it, tear down
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) run --frozen python -m deploy.compose.compose_test $(COMPOSE_TEST_ARGS)

screenshots: ## Refresh docs/screenshots/: every console page, fr/en, 1366 and 390 px (real pipeline + Chromium)
	$(UV) run python -m tests.integration.screenshots

clean: ## Remove local run state (keeps .env)
	rm -rf .run test-artifacts .pytest_cache .mypy_cache .ruff_cache
