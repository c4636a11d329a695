"""The code students read stays clean: ruff (configured in pyproject.toml) finds nothing."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_problem_in_the_library_tests_and_benchmarks():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "aecourse", "tests", "benchmarks", "book/_ext"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff found problems (fix with `ruff check --fix`):\n" \
                                   f"{result.stdout}{result.stderr}"
