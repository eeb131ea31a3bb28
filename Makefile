# The course's commands. `make course` runs every notebook and prints the leaderboard; `make test` runs the tests.
# Both create .venv and install the package first (once; again when pyproject.toml changes).
#   make course PROFILE=smoke|lesson|full NOTEBOOKS="00 01" DEVICE=cpu|cuda|mps DATASET=synthetic-1m
#               PRECISION=float32|bf16|fp16|auto TEXT_MODEL=sentence-transformers/all-mpnet-base-v2
# `make site` renders build/$(PROFILE) as HTML; `make gpu-check` compares every torch model on CUDA and CPU.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch the course is tested with (its CPU build is what CI uses). An existing torch in the venv is kept;
# `make setup TORCH=torch` takes the newest release instead.
TORCH ?= torch==2.13.0
PROFILE ?= lesson
NOTEBOOKS ?=
DEVICE ?=
TEXT_MODEL ?=
DATASET ?=
PRECISION ?=
PYTEST_WORKERS ?= 2

.PHONY: setup course test lab refresh lint clean site gpu-check

# The setup itself is Python (recsys_course/course/setup_env.py), so `python -m recsys_course setup` does the same
# without make (Windows): the venv, torch (one already there is kept; else the CPU build on Linux without an
# NVIDIA driver), then the course with its dev extras. TORCH_INDEX=auto|cpu|pypi|URL overrides where torch comes from.
TORCH_INDEX ?= auto
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m recsys_course setup --venv $(VENV) --torch "$(TORCH)" --torch-index $(TORCH_INDEX)
	touch $@

setup: $(VENV)/.installed

course: setup
	@$(BIN)/recsys-course run --profile $(PROFILE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) \
		$(if $(DEVICE),--device $(DEVICE)) $(if $(TEXT_MODEL),--text-model $(TEXT_MODEL)) \
		$(if $(DATASET),--dataset $(DATASET)) $(if $(PRECISION),--precision $(PRECISION))

# The executed notebooks of build/$(PROFILE) as a static site: build/$(PROFILE)/site/index.html
site: setup
	@$(BIN)/recsys-course site --profile $(PROFILE)

# Every torch model for a few epochs on CUDA and on the CPU, compared; without CUDA it says so and exits 0.
gpu-check: setup
	@$(BIN)/recsys-course gpu-check

# Unit tests + papermill (smoke profile, recorded metrics) + nbval (committed outputs of marked cells).
test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --durations=15 tests notebooks \
		--nbval-lax --nbval-current-env

# JupyterLab on this machine only (127.0.0.1); as root (a container, a cloud VM) Jupyter refuses to start without
# --allow-root, so it is passed, and said.
lab: setup
	@root=; if [ "$$(id -u 2>/dev/null)" = 0 ]; then root=--allow-root; echo "make lab: running as root (a \
	container or a cloud VM?), so --allow-root is passed: Jupyter refuses to start as root without it"; fi; \
	echo "$(BIN)/jupyter lab notebooks --ServerApp.ip=127.0.0.1 $$root"; \
	$(BIN)/jupyter lab notebooks --ServerApp.ip=127.0.0.1 $$root

# Maintainers: re-execute notebooks in place (lesson profile) before committing them.
refresh: setup
	$(BIN)/recsys-course refresh $(NOTEBOOKS)

# Ruff over the package, tests, solutions and the notebooks' code cells (rules in pyproject.toml; must pass),
# then the course's conventions check if the design folder sits beside the repo (advice: never fails the target).
COURSE_LINT ?= ../shared/tools/course_lint.py
lint: setup
	$(BIN)/ruff check .
	@if [ -f $(COURSE_LINT) ]; then $(BIN)/python $(COURSE_LINT) || true; \
	else echo "course lint: $(COURSE_LINT) not found (the design folder is not beside the repo), skipped"; fi

clean:
	rm -rf build .pytest_cache
