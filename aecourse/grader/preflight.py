"""Checks before a class is graded: the source is what was released, and the reference solution
earns every autograded point.

``nbgrader generate_assignment`` records each notebook's cells in the gradebook when an
assignment is released: the source of every graded, solution and locked cell (solutions
cleared, hidden tests kept), its checksum and a graded cell's points. :func:`source_changes`
runs the same nbgrader preprocessors on ``solutions/<ps>`` as it is now and says, cell by
cell, what differs (source, points, kind, added, removed). :func:`reference_failures` grades
the source notebooks themselves as one submission, through the batch's own machinery (the
same :func:`~aecourse.grader.run.grade_submission`, process and deadline), without writing
anything to the gradebook, and returns the test cells they do not pass.
"""

from __future__ import annotations

import copy
import difflib
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["Change", "released_cells", "current_cells", "source_changes", "describe",
           "reference_failures", "check", "REFERENCE"]

REFERENCE = "reference-solution"     # the pseudo-student id of the source notebooks


@dataclass(frozen=True)
class Change:
    """One difference between the release and the source: ``what`` is ``"source"``,
    ``"points"``, ``"kind"`` (cell type, graded/solution/locked), ``"added"`` or
    ``"removed"``; ``cell`` is the grade id (``""`` for a whole notebook)."""

    notebook: str
    cell: str
    what: str
    detail: str = ""


def released_cells(db_url: str, course_id: str, assignment: str) -> dict:
    """notebook -> grade_id -> (source, checksum, points or None), as recorded at release."""
    from nbgrader.api import Gradebook
    released = {}
    with Gradebook(db_url, course_id=course_id) as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            points = {c.name: c.max_score for c in [*notebook.grade_cells,
                                                     *notebook.task_cells]}
            released[notebook.name] = {c.name: (c.source or "", c.checksum, points.get(c.name))
                                       for c in notebook.source_cells}
    return released


def current_cells(source: Path, nbgrader_config) -> dict:
    """The same table for ``source`` (``solutions/<ps>``) now, computed by the preprocessors
    ``nbgrader generate_assignment`` runs before it saves the cells (same configuration)."""
    import nbformat
    from nbgrader import utils
    from nbgrader.preprocessors import ClearSolutions, ComputeChecksums, LockCells
    cells = {}
    for path in sorted(Path(source).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        resources = {}
        for step in (LockCells, ClearSolutions, ComputeChecksums):
            nb, resources = step(config=nbgrader_config).preprocess(nb, resources)
        table = cells[path.stem] = {}
        for cell in nb.cells:
            if utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell) \
                    or utils.is_task(cell):
                meta = cell.metadata.nbgrader
                points = float(meta["points"]) if utils.is_grade(cell) or utils.is_task(cell) \
                    else None
                table[meta["grade_id"]] = (cell.source, meta.get("checksum"), points)
    return cells


def _diff(before: str, after: str, lines: int = 8) -> str:
    changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                     lineterm="", n=0)
               if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    shown = [f"      {line[:100]}" for line in changed[:lines]]
    if len(changed) > lines:
        shown.append(f"      ... ({len(changed) - lines} more changed lines)")
    return "\n".join(shown)


def source_changes(released: dict, current: dict) -> list[Change]:
    """What differs between the release (:func:`released_cells`) and the source now
    (:func:`current_cells`). An autotest cell's source is not compared: nbgrader stores it
    instantiated (it runs a kernel at release), so only its points and presence are."""
    changes = []
    for name in sorted(set(released) | set(current)):
        if name not in current or name not in released:
            changes.append(Change(name, "", "removed" if name in released else "added"))
            continue
        before, now = released[name], current[name]
        for grade_id in [*before, *(g for g in now if g not in before)]:
            if grade_id not in now or grade_id not in before:
                changes.append(Change(name, grade_id,
                                      "removed" if grade_id in before else "added"))
                continue
            (old, old_sum, old_points), (new, new_sum, new_points) = before[grade_id], \
                now[grade_id]
            found = []
            if old_points != new_points:
                found.append(Change(name, grade_id, "points",
                                    f"released {_points(old_points)}, now {_points(new_points)}"))
            if old != new and "AUTOTEST" not in new:
                found.append(Change(name, grade_id, "source", _diff(old, new)))
            if not found and old_sum != new_sum and "AUTOTEST" not in new:
                found.append(Change(name, grade_id, "kind",
                                    "its cell type or graded/solution/locked flags"))
            changes += found
    return changes


def _points(value) -> str:
    if value is None:
        return "not graded"
    return f"{value:g} point" + ("" if value == 1 else "s")


def describe(changes: list[Change], assignment: str, source: str) -> str:
    """The instructor's message: every change, then what to do."""
    lines = [f"aecourse grade: {source} has changed since {assignment} was released (the "
             "gradebook holds the release):"]
    for change in changes:
        where = f"{change.notebook}.ipynb" + (f", cell {change.cell!r}" if change.cell else "")
        detail = change.detail if change.what == "source" or not change.detail \
            else f" ({change.detail})"
        lines.append(f"  {where}: {change.what}" + (f"\n{detail}" if change.what == "source"
                                                    and detail else detail))
    lines.append(
        f"Students got the release. If the change is intended, record it with `aecourse release "
        f"{assignment}` (nbgrader then stores the new test cells and points; it refuses to add "
        f"or remove cells once there are submissions) and grade again. To grade now anyway, "
        f"pass --allow-changed-source: the test cells and points recorded at release are used, "
        f"as `nbgrader autograde` does.")
    return "\n".join(lines)


def reference_failures(task, config: dict) -> list[str]:
    """Grade the source notebooks as a submission (``task`` is the class's task for the
    pseudo-student :data:`REFERENCE`); each test cell they fail, as ``notebook/cell: why``.

    Graded by a one-submission :class:`~aecourse.grader.batch.Batch`, so the reference runs
    exactly as a student's submission does (process, isolation, limits, deadline); its result
    is kept in memory and never written.
    """
    from aecourse.grader.batch import Batch

    with tempfile.TemporaryDirectory(prefix="aecourse-reference-") as scratch:
        folder = Path(scratch) / "submitted" / task.student / task.assignment
        folder.mkdir(parents=True)
        for path in Path(task.source).glob("*.ipynb"):
            shutil.copyfile(path, folder / path.name)
        # if a result were ever written, it would go to a throwaway gradebook, not the course's
        sandbox = dict(copy.copy(config), db_url=f"sqlite:///{scratch}/unused.db",
                       autograded=f"{scratch}/autograded", feedback=f"{scratch}/feedback",
                       submitted=str(Path(scratch) / "submitted"))
        batch = Batch([replace(task, submitted=sandbox["submitted"])], sandbox, jobs=1,
                      progress=False, write=False)
        results = batch.run()
    if not results:
        return ["the reference solution was not graded"]
    result = results[0]
    if result.error and not result.notebooks:
        return [f"grading it failed: {result.error}"]
    return [f"{nb.name}/{cell.grade_id} ({cell.points:g} of {cell.max_points:g} points): "
            + ((cell.reason or "").strip().splitlines() or ["failed"])[0][:300]
            for nb in result.notebooks for cell in nb.cells
            if cell.kind == "test" and (not cell.passed or cell.points < cell.max_points)]


def check(config: dict, assignment: str, reference_task, *, allow_changed_source: bool,
          solution_check: bool, log) -> bool:
    """Both checks, in order, as ``aecourse grade`` runs them; ``False`` (and a message on
    ``log``) when grading must not start."""
    changes = source_changes(released_cells(config["db_url"], config["course_id"], assignment),
                             current_cells(Path(config["source"]), config["nbgrader"]))
    if changes:
        print(describe(changes, assignment, config["source"]), file=log)
        if not allow_changed_source:
            return False
        print("aecourse grade: --allow-changed-source: grading with the release's test cells "
              "and points.", file=log)
    if not solution_check:
        return True
    started = time.monotonic()
    failures = reference_failures(reference_task, config)
    if failures:
        print(f"aecourse grade: the reference solution ({config['source']}) does not earn "
              "every autograded point, so the class was not graded:\n"
              + "\n".join(f"  {line}" for line in failures)
              + "\nFix the test or the solution (then `aecourse release "
              f"{assignment}`), or pass --skip-solution-check.", file=log)
        return False
    print(f"aecourse grade: the reference solution earns every autograded point (checked in "
          f"{time.monotonic() - started:.1f} s; --skip-solution-check skips this)", file=log)
    return True
