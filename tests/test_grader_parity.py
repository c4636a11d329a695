"""``aecourse grade`` scores nbgrader's own autograde fixtures exactly as ``nbgrader autograde``.

nbgrader ships the notebooks its autograde tests use (``nbgrader/tests/apps/files``): an
assignment with an unchanged and a changed submission, two cheat attempts, hidden tests,
autotests, an infinite loop in the source, a time-out, a notebook that checks
``NBGRADER_EXECUTION``, and a two-notebook assignment with one notebook missing. One course
holds each scenario as its own assignment; a copy is graded by plain ``nbgrader autograde`` and
another by ``aecourse grade``. Per grade cell, an honest student gets exactly nbgrader's score;
a cheat attempt gets no more than nbgrader gives it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbgrader
import pytest

FILES = Path(nbgrader.__file__).parent / "tests" / "apps" / "files"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}:/usr/bin:/bin", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}

CONFIG = """c = get_config()
c.CourseDirectory.course_id = "parity"
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
c.ClearSolutions.code_stub = dict(python="# YOUR CODE HERE")
"""

# assignment -> (source notebooks, students). A student is "honest" or "cheat" and
# {notebook: fixture file} (None: the released notebook).
SCENARIOS = {
    "basic": ({"p1": "submitted-unchanged.ipynb"}, {
        "unchanged": ("honest", {"p1": "submitted-unchanged.ipynb"}),
        "changed": ("honest", {"p1": "submitted-changed.ipynb"}),
        "cheat": ("cheat", {"p1": "submitted-cheat-attempt.ipynb"}),
        "cheat_alternative": ("cheat", {"p1": "submitted-cheat-attempt-alternative.ipynb"}),
        "grade_cell_changed": ("cheat", {"p1": "submitted-grade-cell-changed.ipynb"}),
        "locked_cell_changed": ("cheat", {"p1": "submitted-locked-cell-changed.ipynb"}),
    }),
    "hidden": ({"p1": "test-hidden-tests.ipynb"}, {
        "release": ("honest", {"p1": None}),                 # passes visible, fails hidden tests
    }),
    "two_notebooks": ({"p1": "submitted-unchanged.ipynb", "p2": "submitted-unchanged.ipynb"}, {
        "one_missing": ("honest", {"p1": "submitted-changed.ipynb"}),
        "both": ("honest", {"p1": "submitted-changed.ipynb", "p2": "submitted-unchanged.ipynb"}),
    }),
    "autotest_simple": ({"p1": "autotest-simple.ipynb"}, {
        "unchanged": ("honest", {"p1": "autotest-simple-unchanged.ipynb"}),
        "changed": ("honest", {"p1": "autotest-simple-changed.ipynb"}),
    }),
    "autotest_multi": ({"p1": "autotest-multi.ipynb"}, {
        "unchanged": ("honest", {"p1": "autotest-multi-unchanged.ipynb"}),
        "changed": ("honest", {"p1": "autotest-multi-changed.ipynb"}),
    }),
    "autotest_hidden": ({"p1": "autotest-hidden.ipynb"}, {
        "unchanged": ("honest", {"p1": "autotest-hidden-unchanged.ipynb"}),
        "changed_wrong": ("honest", {"p1": "autotest-hidden-changed-wrong.ipynb"}),
        "changed_right": ("honest", {"p1": "autotest-hidden-changed-right.ipynb"}),
    }),
    "environment": ({"p1": "validating-environment-variable.ipynb"}, {
        "same": ("honest", {"p1": "validating-environment-variable.ipynb"}),
    }),
    "infinite_loop": ({"p1": "infinite-loop.ipynb"}, {
        "same": ("honest", {"p1": "infinite-loop.ipynb"}),
    }),
    "timeout": ({"p1": "timeout.ipynb"}, {
        "same": ("honest", {"p1": "timeout.ipynb"}),
    }),
}

TIMEOUT = 3     # seconds per cell for both graders: the fixtures' cells that end take < 0.1 s

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grader_parity"),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]


def run(command: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def make_course(root: Path) -> Path:
    """Every scenario released by nbgrader, every submission in ``submitted/``."""
    (root / "source").mkdir(parents=True)
    shutil.copy(FILES / "autotests.yml", root)
    for assignment, (sources, _) in SCENARIOS.items():
        (root / "source" / assignment).mkdir()
        for notebook, fixture in sources.items():
            shutil.copy(FILES / fixture, root / "source" / assignment / f"{notebook}.ipynb")
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=root))
    run([str(BIN / "nbgrader"), "generate_assignment", "*", "--create"], root)   # all at once
    for assignment, (_, students) in SCENARIOS.items():
        for student, (_, notebooks) in students.items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True)
            for notebook, fixture in notebooks.items():
                origin = (root / "release" / assignment / f"{notebook}.ipynb" if fixture is None
                          else FILES / fixture)
                shutil.copy(origin, folder / f"{notebook}.ipynb")
    return root


def scores(root: Path, assignment: str) -> dict:
    """student -> {(notebook, grade cell): score} from the course's gradebook."""
    from nbgrader.api import Gradebook
    found = {}
    with Gradebook(f"sqlite:///{root}/gradebook.db", course_id="parity") as gb:
        for submission in gb.assignment_submissions(assignment):
            found[submission.student.id] = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    found.setdefault(submission.student.id, {})[
                        notebook.name, grade.name] = grade.auto_score
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = make_course(tmp_path_factory.mktemp("parity") / "base")
    courses = {}
    for grader in ("nbgrader", "aecourse"):
        root = base.parent / grader
        shutil.copytree(base, root, symlinks=True)
        (root / "nbgrader_config.py").write_text(CONFIG.format(root=root))
        courses[grader] = root
    run([str(BIN / "nbgrader"), "autograde", "*", "--create", "--force",
         f"--Execute.timeout={TIMEOUT}", f"--ExecutePreprocessor.timeout={TIMEOUT}"],
        courses["nbgrader"], timeout=600)
    results = {}
    for assignment in SCENARIOS:
        results[assignment] = {"nbgrader": scores(courses["nbgrader"], assignment)}
        try:       # one failing scenario must not hide the others
            results[assignment]["output"] = run(
                [str(BIN / "aecourse"), "grade", assignment, "--jobs", "2", "--timeout",
                 str(TIMEOUT), "--skip-solution-check"],   # nbgrader's fixtures: no reference
                courses["aecourse"], timeout=120).stdout
        except (AssertionError, subprocess.TimeoutExpired) as error:
            results[assignment]["failed"] = str(error)[-3000:]
        results[assignment]["aecourse"] = scores(courses["aecourse"], assignment)
    results["courses"] = courses
    return results


@pytest.mark.parametrize("assignment", sorted(SCENARIOS))
def test_honest_students_get_exactly_nbgraders_score_per_cell(graded, assignment):
    assert "failed" not in graded[assignment], graded[assignment].get("failed")
    for student, (kind, notebooks) in SCENARIOS[assignment][1].items():
        theirs = graded[assignment]["nbgrader"].get(student)
        ours = graded[assignment]["aecourse"].get(student)
        assert theirs is not None, f"nbgrader did not grade {student} in {assignment}"
        if kind == "honest":
            assert ours == theirs, f"{assignment}/{student}"
            for grader, course in graded["courses"].items():
                for notebook in notebooks:
                    path = course / "autograded" / student / assignment / f"{notebook}.ipynb"
                    assert path.is_file(), f"{grader} wrote no {path}"


@pytest.mark.parametrize("assignment", sorted(a for a, s in SCENARIOS.items()
                                              if any(k == "cheat" for k, _ in s[1].values())))
def test_cheat_fixtures_get_no_more_than_nbgrader_gives_them(graded, assignment):
    assert "failed" not in graded[assignment], graded[assignment].get("failed")
    for student, (kind, _) in SCENARIOS[assignment][1].items():
        if kind == "cheat":
            theirs = graded[assignment]["nbgrader"][student]
            ours = graded[assignment]["aecourse"].get(student)
            assert ours is not None and set(ours) == set(theirs), f"{assignment}/{student}"
            more = {cell: (ours[cell], theirs[cell]) for cell in theirs
                    if (ours[cell] or 0) > (theirs[cell] or 0)}
            assert not more, f"{assignment}/{student}: more than nbgrader on {more}"


def test_a_source_cell_that_never_ends_is_a_note_not_a_hang(graded):
    # infinite-loop.ipynb is an instructor's cell (not graded) that loops for ever: nbgrader
    # records the time-out and goes on; aecourse grade must too, and say so.
    assert "failed" not in graded["infinite_loop"], graded["infinite_loop"].get("failed")
    assert "same: " in graded["infinite_loop"]["output"]
