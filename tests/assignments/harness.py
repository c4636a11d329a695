"""A generic harness for testing the nbgrader assignments in ``solutions/*/``.

Every directory ``solutions/<ps>/`` holding ``<ps>.ipynb`` is an assignment; nothing
here names a particular one. ``tests/test_assignments.py`` uses these helpers to check
that ``exercises/`` is in sync with ``solutions/``, that the release leaks nothing,
and that ``aecourse grade`` gives each simulated student the points it should.

Bug files
---------
For each assignment, ``tests/assignments/bugs_<ps>.py`` defines ``BUGS``: a list of
plausible student mistakes, each a dict::

    BUGS = [
        dict(name="forgot-to-centre",         # short, unique; becomes the student id
             cell="pca_svd",                  # grade_id of a SOLUTION cell of <ps>.ipynb
             find="Xc = X - mean",            # exact substring of that cell's solution
             replace="Xc = X",                # what the buggy student wrote instead
             loses=["test_pca_svd_subspace",  # grade_ids of the TEST cells that must fail;
                    "test_pca_svd_eigenvalues"]),   # every other test cell must pass
    ]

The harness asserts that ``find`` occurs exactly once in the cell and that ``cell``
and ``loses`` name existing cells. The submission of a bug student is the release
notebook with every solution cell filled from the source (markers removed) and this
one replacement applied; it must lose exactly the points of the ``loses`` cells.
Give at least one bug per graded function.

An optional key ``visible`` (default ``None``) pins whether the student sees the bug
*before* submitting: ``True`` if the visible part of some ``loses`` cell (the lines
above ``### BEGIN HIDDEN TESTS``, which the release keeps) fails, ``False`` if only
hidden tests catch it. The end-to-end test measures it in the same ``aecourse grade``
batch (see :func:`tag_visible_failures`) and asserts every declared value; ``None``
only reports it.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS, EXERCISES = REPO / "solutions", REPO / "exercises"
NBGRADER = Path(sys.executable).with_name("nbgrader")
AECOURSE = Path(sys.executable).with_name("aecourse")
TIMEOUT = 90          # wall-clock seconds per cell (aecourse grade --timeout)

_MARKER = re.compile(r"^\s*#*\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")
_SOLUTION = re.compile(r"#+ BEGIN SOLUTION[^\n]*\n(.*?)[ \t]*#+ END SOLUTION", re.S)


# ---------------------------------------------------------------- reading notebooks
def assignments() -> list[str]:
    """Names of every assignment: ``solutions/<ps>/<ps>.ipynb``."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").is_file())


def read(path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def meta(cell) -> dict:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def cells_by_id(nb) -> dict:
    """grade_id -> cell, for every nbgrader cell."""
    return {meta(c)["grade_id"]: c for c in nb.cells if meta(c).get("grade_id")}


def solution_cells(nb) -> dict:
    return {k: c for k, c in cells_by_id(nb).items() if meta(c).get("solution")}


def test_cells(nb) -> dict:
    """grade_id -> points of every autograded test cell."""
    return {k: float(meta(c)["points"]) for k, c in cells_by_id(nb).items()
            if meta(c).get("grade") and not meta(c).get("solution")}


def manual_cells(nb) -> dict:
    return {k: float(meta(c)["points"]) for k, c in cells_by_id(nb).items()
            if meta(c).get("grade") and meta(c).get("solution")}


def solution_regions(source: str) -> list[str]:
    """The texts between ``### BEGIN SOLUTION`` and ``### END SOLUTION``."""
    return _SOLUTION.findall(source)


def without_hidden_tests(source: str) -> str:
    """A test cell as nbgrader releases it: hidden-test lines (and markers) removed."""
    kept, hidden = [], False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept)


def strip_markers(source: str) -> str:
    """A source cell as a student would write it: the nbgrader marker lines removed."""
    return "\n".join(line for line in source.splitlines() if not _MARKER.match(line))


def normalised(nb) -> list[tuple]:
    """The cells of a notebook without what nbgrader or Jupyter may vary (ids, outputs, ...)."""
    keep = ("grade", "solution", "locked", "grade_id", "points", "task")
    return [(c.cell_type, c.source.rstrip(), {k: meta(c).get(k) for k in keep if k in meta(c)})
            for c in nb.cells]


# ---------------------------------------------------------------- bugs and submissions
def load_bugs(ps: str, source_nb=None) -> list[dict]:
    """``BUGS`` of ``bugs_<ps>.py`` (empty if the file is missing), checked against the source."""
    path = Path(__file__).with_name(f"bugs_{ps}.py")
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"bugs_{ps}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bugs = [dict(bug) for bug in module.BUGS]
    source_nb = source_nb or read(SOLUTIONS / ps / f"{ps}.ipynb")
    solutions, tests = solution_cells(source_nb), test_cells(source_nb)
    names = [b["name"] for b in bugs]
    assert len(set(names)) == len(names), f"{path.name}: bug names repeat: {names}"
    for bug in bugs:
        assert set(bug) - {"visible"} == {"name", "cell", "find", "replace", "loses"}, \
            (f"{path.name}: bug {bug.get('name')!r} needs exactly name/cell/find/replace/loses "
             "(and optionally visible)")
        bug.setdefault("visible", None)
        assert bug["visible"] in (True, False, None), \
            f"{path.name}: {bug['name']}: visible must be True, False or None"
        assert re.fullmatch(r"[a-z0-9-]+", bug["name"]), \
            f"{path.name}: bug name {bug['name']!r} must be lower-case letters, digits, dashes"
        assert bug["cell"] in solutions, \
            f"{path.name}: {bug['name']}: no solution cell {bug['cell']!r} in {ps}.ipynb"
        count = solutions[bug["cell"]].source.count(bug["find"])
        assert count == 1, (f"{path.name}: {bug['name']}: `find` must occur exactly once in "
                            f"cell {bug['cell']!r}, it occurs {count} times")
        unknown = set(bug["loses"]) - set(tests)
        assert not unknown, f"{path.name}: {bug['name']}: no test cells {sorted(unknown)}"
    return bugs


def submission(release_nb, source_nb, bug: dict | None = None):
    """The release notebook with every solution cell filled from the source (and one bug)."""
    nb = nbformat.from_dict(release_nb)
    source = solution_cells(source_nb)
    for grade_id, cell in solution_cells(nb).items():
        text = source[grade_id].source
        if bug is not None and bug["cell"] == grade_id:
            text = text.replace(bug["find"], bug["replace"])
        cell.source = strip_markers(text)
    return nb


# ---------------------------------------------------------------- where a test cell failed
VISIBLE_TAG = "[failed in the visible part] "


def tag_visible_failures(course: Path, ps: str) -> None:
    """Make the visible part of every test cell of ``course``'s source tag its failures.

    The lines above ``### BEGIN HIDDEN TESTS`` (all the student sees before submitting)
    go into ``try: ... except Exception as e: e.args = (VISIBLE_TAG + str(e),); raise``:
    the exception keeps its type (the grader's handling is unchanged) and the grader's
    reason starts with :data:`VISIBLE_TAG`, so a failure in the visible part and one in
    the hidden tests are told apart in the same ``aecourse grade`` run, with no second
    execution. Only for a copy of the course (:func:`new_course`), never ``solutions/``.
    """
    path = course / "solutions" / ps / f"{ps}.ipynb"
    assert path.resolve().parent != (SOLUTIONS / ps).resolve(), "tag a copy, not solutions/"
    nb = read(path)
    for grade_id, cell in cells_by_id(nb).items():
        if not (meta(cell).get("grade") and not meta(cell).get("solution")):
            continue
        lines = cell.source.splitlines()
        start = next(i for i, line in enumerate(lines) if "BEGIN HIDDEN TESTS" in line)
        end = next(i for i, line in enumerate(lines) if "END HIDDEN TESTS" in line)
        assert not "".join(lines[end + 1:]).strip(), \
            f"{ps}: {grade_id}: code after END HIDDEN TESTS would not be measured"
        visible = [f"    {line}" if line.strip() else "" for line in lines[:start]]
        cell.source = "\n".join(
            ["try:", *visible, "    pass", "except Exception as _visible_failure:",
             f"    _visible_failure.args = ({VISIBLE_TAG!r} + str(_visible_failure),)",
             "    raise", *lines[start:]])
        ast.parse(cell.source)                        # the wrapping must stay valid Python
    nbformat.write(nb, str(path))


def failed_visibly(report_rows: list, cells) -> bool:
    """Whether one of ``cells`` failed in its visible part (rows of the grade report)."""
    return any(row["cell"] in cells and VISIBLE_TAG.strip() in row["reason"]
               for row in report_rows)


# ---------------------------------------------------------------- running nbgrader
def nbgrader(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` from the venv in ``cwd``; fail with its output if it fails."""
    command = [str(NBGRADER) if NBGRADER.exists() else sys.executable, *(
        [] if NBGRADER.exists() else ["-m", "nbgrader"]), *args]
    # One thread per kernel: these models are tiny, and two workers share two cores.
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
           # nbgrader calls `alembic`, which lives next to it in the venv
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    if done.returncode != 0:
        raise AssertionError(f"`nbgrader {' '.join(args)}` failed in {cwd} "
                             f"(exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-5000:]}")
    return done


def strip_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


def new_course(tmp: Path, *, exercises: bool = True) -> Path:
    """A copy of the course (config, solutions/, optionally exercises/) in ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", tmp)
    shutil.copytree(SOLUTIONS, tmp / "solutions")
    if exercises and EXERCISES.exists():
        shutil.copytree(EXERCISES, tmp / "exercises")
    return tmp


def generate(course: Path, ps: str) -> nbformat.NotebookNode:
    """``nbgrader generate_assignment`` in ``course``; the released notebook, outputs stripped."""
    nbgrader("generate_assignment", ps, "--force", "--create",
             f"--CourseDirectory.root={course}", cwd=course)
    nb = read(course / "exercises" / ps / f"{ps}.ipynb")
    strip_outputs(nb)
    return nb


def aecourse_grade(course: Path, ps: str, *, jobs: int = 2) -> subprocess.CompletedProcess:
    """``aecourse grade <ps>`` in ``course``; fail with its output if it fails."""
    # --skip-solution-check: the batch's own "solution" student checks the reference solution
    command = [str(AECOURSE), "grade", ps, "--jobs", str(jobs), "--timeout", str(TIMEOUT),
               "--skip-solution-check"]
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=1800,
                          env=env)
    if done.returncode != 0:
        raise AssertionError(f"`aecourse grade {ps}` failed in {course} (exit {done.returncode}):"
                             f"\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def grade(course: Path, ps: str, students: dict) -> dict:
    """Submit, grade with ``aecourse grade``, generate feedback and export; return the scores.

    ``students`` maps a student id to its submitted notebook. The result has, per
    student, ``"cells"`` (grade_id -> score from the gradebook), ``"csv"`` (the row
    of ``nbgrader export``), ``"report"`` (the rows of ``aecourse grade``'s CSV report),
    ``"flagged"`` (the gradebook's tampering flag), ``"feedback"`` (a feedback page exists)
    and ``"seconds"`` for the whole run; ``results[None]`` is the command's output.
    """
    from nbgrader.api import Gradebook

    start = time.perf_counter()
    for student, nb in students.items():
        folder = course / "submitted" / student / ps
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(folder / f"{ps}.ipynb"))
    root = f"--CourseDirectory.root={course}"
    output = aecourse_grade(course, ps).stdout
    nbgrader("generate_feedback", ps, "--force", root, cwd=course)
    nbgrader("export", root, f"--assignment={ps}", f"--to={course / 'grades.csv'}", cwd=course)
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    with open(course / "autograded" / f"aecourse_report_{ps}.csv", newline="",
              encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    results = {None: output}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            notebook = gradebook.find_submission_notebook(ps, ps, student)
            results[student] = {"cells": {g.name: g.score for g in notebook.grades},
                                "csv": rows.get(student), "flagged": notebook.flagged,
                                "report": [r for r in report if r["student"] == student]}
            feedback = course / "feedback" / student / ps / f"{ps}.html"
            results[student]["feedback"] = feedback.exists()
    for student in students:
        results[student]["seconds"] = time.perf_counter() - start
    return results
