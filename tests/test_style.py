"""The code students read stays clean: ruff (configured in pyproject.toml) finds nothing."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_problem_in_the_library_tests_benchmarks_and_chapters():
    ruff = Path(sys.executable).parent / "ruff"
    chapters = sorted(str(p.relative_to(REPO)) for p in (REPO / "book").glob("*.ipynb"))
    assert chapters, "no chapter notebooks found"
    result = subprocess.run([str(ruff), "check", "aecourse", "tests", "benchmarks", "book/_ext",
                             *chapters],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff found problems (fix with `ruff check --fix`):\n" \
                                   f"{result.stdout}{result.stderr}"
