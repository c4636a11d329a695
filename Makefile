# The two commands of the README, and a few instructor verbs. Thin: it only calls the tools.
PYTHON ?= python3
# An existing environment instead of .venv: `make test VENV=/opt/course-env` (its bin/ is used),
# or `make grade BIN=/usr/local/bin STAMP= ...` to use tools already installed, installing nothing.
VENV   ?= .venv
BIN    ?= $(VENV)/bin
STAMP  ?= $(VENV)/.installed

# The course's models are tiny: one BLAS/OpenMP thread per process is fastest, and the test
# suite runs two processes on two cores. Without this, thread contention makes them 10-60x slower.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: help book publish test release grade bench clean
.DEFAULT_GOAL := help

help:
	@echo "make book     install into .venv (when requirements changed) and build the HTML book"
	@echo "make publish  the same: the student edition in _build/student/ and its HTML book"
	@echo "make test     install into .venv (when requirements changed) and run every test"
	@echo "make release  regenerate exercises/ from solutions/ (nbgrader generate_assignment)"
	@echo "make grade ASSIGNMENT=ps1 [ARGS=\"--jobs 2 --student alice\"]   grade one assignment"
	@echo "make bench    print the benchmark tables quoted in the README"

# Reinstall only when requirements.txt or pyproject.toml changed since the last install.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

# The book is the student edition's: aecourse publish writes the student tree into
# _build/student/, executes every chapter there once, and builds its HTML (no re-execution).
# PUBLISH_ARGS passes options, e.g. PUBLISH_ARGS="--python /path/to/student/venv/bin/python".
book publish: $(STAMP)
	TQDM_DISABLE=1 $(BIN)/python -m aecourse.publish $(PUBLISH_ARGS)

# Two workers (the machine has two cores). tests/conftest.py schedules them: each test file is
# one unit (its module fixture built once), the assignments' graded batches go one by one, and
# the files with the most tests start first. Chapters execute once, in the student
# edition's fresh environment (tests/test_publish.py); solutions once, as the "solution" student
# of each assignment's graded batch (tests/test_assignments.py).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=20

release: $(STAMP)
	$(BIN)/aecourse release

grade: $(STAMP)
	$(BIN)/aecourse grade $(ASSIGNMENT) $(ARGS)

# bench_grading.py grades 40 submissions twice (about 40 minutes); BENCH_GRADING_N=10 is quicker.
BENCH_GRADING_N ?= 40
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_library.py
	$(BIN)/python benchmarks/bench_chapters.py
	$(BIN)/python benchmarks/bench_grading.py --n $(BENCH_GRADING_N)

clean:
	rm -rf _build .pytest_cache
