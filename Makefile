# Entry points named in the README. Every target sets itself up first (idempotent, fast when done).
.PHONY: setup setup-test demo test check lint static suite bench faults docs

VENV ?= .venv
BIN := $(VENV)/bin

setup:
	@bash infra/bootstrap.sh

setup-test:
	@bash infra/bootstrap.sh --with-test-tools

# The main job: an instant restore of the bundled sample export, with the embedded local defaults
# (lake in ./data, a temporary Prefect API, the local Elasticsearch-API server under .state/).
demo: setup
	$(BIN)/rememberme restore samples/kakao_android_ko.txt --owner demo --persona 엄마

lint: setup-test
	@$(MAKE) --no-print-directory static

# Everything (what CI runs): lint and types beside the whole suite (mypy uses one core, and the
# suite leaves a core idle while its tests wait on servers), both must pass. Each pytest worker
# has its own local servers (search, GCS emulator, Prefect API) on free ports.
test: setup-test
	@$(MAKE) --no-print-directory -j2 static suite

# The parts of `test`, for targets that have already set up.
static:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The documentation site (docs/, mkdocs.yml) into build/site; `make test` builds it with --strict too.
docs: setup-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

suite:
	$(BIN)/pytest -q -n $(SUITE_WORKERS) --dist worksteal --durations=25 -m "not faults"

# Kill it and see: SIGKILL restore, recycling and forget at each of the kill points of infra/faults.py,
# run again, compare with a run never killed; and forget racing recycling over 20 seeded
# interleavings. About 40 minutes on 2 cores, so not part of `make test` (which runs the in-process
# kill-and-resume tests of each flow).
faults: setup-test
	@mkdir -p .state && rm -f .state/faults-report.jsonl
	FAULTS_REPORT=$(CURDIR)/.state/faults-report.jsonl $(BIN)/pytest -q -n $(WORKERS) -m faults
	@cat .state/faults-report.jsonl  # per kill point: seconds until killed, of the re-run, of a clean run

# Between small steps: lint and the unit tests (no servers, no end-to-end flows), in under 2 minutes.
check: setup-test
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n $(WORKERS) -m "not integration and not slow"

WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# One worker more than cores for the whole suite: its end-to-end tests spend a third of their time
# waiting on servers and child processes, which another worker's test fills (10:44 -> 10:04 on 2 cores).
SUITE_WORKERS ?= $(shell [ $(WORKERS) -gt 1 ] && echo $$(( $(WORKERS) + 1 )) || echo $(WORKERS))

bench: setup-test  # audio and voice benches speak with espeak-ng
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/clean.py
	$(BIN)/python bench/index.py
	$(BIN)/python bench/recycle.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/restore.py
	$(BIN)/python bench/tokenizer.py
	$(BIN)/python bench/audio.py
	$(BIN)/python bench/voice.py

# Production rehearsal without containers (infra/production/rehearsal.py): PostgreSQL, the Prefect
# server with its auth string, work pools and process workers, a Dask scheduler and two workers, the
# GCS emulator and the search stand-in as local processes; restore, recycling and forget over the
# REST API, then killed workers, a database outage and the automations' notifications. Prints each
# scenario's result and time (about 15 minutes on 2 cores); stops every process, also on Ctrl-C.
.PHONY: rehearsal
rehearsal: setup-test
	@dpkg -s postgresql-15 >/dev/null 2>&1 || { S=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq postgresql-15 >/dev/null; }
	$(BIN)/python -m infra.production.rehearsal
