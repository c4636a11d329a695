"""The single writer: one submission's result into nbgrader's gradebook and ``autograded/``.

Only the batch's main process calls :func:`write_result`, one submission at a time, so the
gradebook (SQLite or PostgreSQL) has one writer. A test cell is scored out of the points
recorded at release and never above them; a regrade keeps the manual grades of unchanged
answers. All student text is cleaned first (lone
surrogates become U+FFFD); a timestamp that does not parse is a note, and the submission is
treated as on time (no timestamp is recorded).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from pathlib import Path

from aecourse.grader import late, notebooks
from aecourse.grader.files import read_file

__all__ = ["write_result", "read_timestamp", "stored_tests", "copy_secret", "previous_answers"]


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def stored_tests(db_url: str, course_id: str, assignment: str, notebook: str) -> dict:
    """grade_id -> source of each test cell as ``nbgrader generate_assignment`` stored it
    (autotests instantiated, hidden tests kept): what ``nbgrader autograde`` runs too."""
    from nbgrader.api import Gradebook, MissingEntry
    try:
        with Gradebook(db_url, course_id=course_id) as gb, _quiet():
            cells = gb.find_notebook(notebook, assignment).source_cells
            return {c.name: c.source for c in cells if c.cell_type == "code" and c.source}
    except MissingEntry:
        return {}


def read_timestamp(folder: Path) -> tuple[str | None, str | None, list[str]]:
    """``timestamp.txt`` of a submission: (text, parsed as nbgrader does it, notes)."""
    from nbgrader.utils import parse_utc
    data = read_file(folder / "timestamp.txt", 4096)
    if data is None:
        return None, None, []
    try:
        text = notebooks.clean(data.decode("utf-8", "replace")).strip()
        return text, parse_utc(text), []
    except Exception as error:  # noqa: BLE001  (any content is the student's)
        return None, None, [f"timestamp.txt does not parse as a time ({type(error).__name__}); "
                            "treated as on time"]


def copy_secret(submitted: Path, autograded: Path) -> None:
    """Copy ``submission_secret.txt`` as ``nbgrader autograde`` does: ``nbgrader
    release_feedback`` reads it from ``autograded/<student>/<ps>/`` (a regular file only,
    never through a link)."""
    data = read_file(submitted / "submission_secret.txt", 4096)
    if data is not None:
        (autograded / "submission_secret.txt").write_bytes(data)


def previous_answers(folder: Path) -> dict:
    """notebook -> grade_id -> source of each answer cell in the autograded notebooks of an
    earlier grading (``{}`` if none): what a regrade compares the new answers with."""
    answers = {}
    for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        data = read_file(path, notebooks.MAX_NOTEBOOK_BYTES)
        try:
            cells = json.loads(data.decode("utf-8"))["cells"] if data else []
        except (ValueError, KeyError, TypeError):
            continue
        answers[path.stem] = _answer_sources(cells)
    return answers


def _answer_sources(cells) -> dict:
    found = {}
    for cell in cells if isinstance(cells, list) else []:
        meta = (cell.get("metadata") or {}).get("nbgrader") if isinstance(cell, dict) else None
        if isinstance(meta, dict) and meta.get("solution") and meta.get("grade_id"):
            source = cell.get("source", "")
            found[str(meta["grade_id"])] = "".join(source) if isinstance(source, list) \
                else str(source)
    return found


def write_result(result, config: dict) -> list[str]:
    """Write a :class:`~aecourse.grader.run.SubmissionResult`'s autograded notebooks and
    replace this student's scores; returns notes to add (e.g. on the timestamp).

    A regrade keeps a manual grade (and its review state) where the answer's text did not
    change since the last grading; the feedback pages of that grading are stale and removed
    (``nbgrader generate_feedback`` regenerates them, without ``--force``).
    """
    from nbgrader.api import Gradebook
    student, ps = result.student, result.assignment
    folder = Path(config["autograded"]) / student / ps
    before = previous_answers(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    text, timestamp, notes = read_timestamp(Path(config["submitted"]) / student / ps)
    if timestamp is not None:
        (folder / "timestamp.txt").write_text(text + "\n", encoding="utf-8")
    copy_secret(Path(config["submitted"]) / student / ps, folder)
    with Gradebook(config["db_url"], course_id=config["course_id"]) as gb, _quiet():
        gb.update_or_create_student(student)
        gb.update_or_create_submission(ps, student,
                                       **({"timestamp": timestamp} if timestamp else {}))
        for notebook in result.notebooks:
            if notebook.autograded is not None:
                (folder / f"{notebook.name}.ipynb").write_text(notebook.autograded,
                                                               encoding="utf-8")
            notes += _grades(gb, config, notebook, ps, student, flagged=bool(result.flags),
                             before=before.get(notebook.name))
        gb.db.commit()
        # the course's late-submission policy, exactly as nbgrader autograde applies it
        seconds_late, penalty = late.apply_late_penalties(
            gb, ps, student, config.get("nbgrader") or late.course_config(config["course"]))
    if seconds_late > 0:
        notes.append(f"late by {seconds_late / 3600:.1f} h: penalty {penalty:g} points "
                     "(the course's late-submission policy)")
    stale = Path(config["feedback"]) / student / ps if config.get("feedback") else None
    if stale is not None and (stale.exists() or stale.is_symlink()):
        stale.unlink() if stale.is_symlink() or not stale.is_dir() else shutil.rmtree(stale)
    return notes


def _grades(gb, config: dict, notebook, ps: str, student: str, *, flagged: bool,
            before: dict | None) -> list[str]:
    """Store one notebook's scores; notes on what the gradebook does not hold."""
    from nbgrader.api import MissingEntry
    name, notes = notebook.name, []
    source = json.loads((Path(config["source"]) / f"{name}.ipynb").read_text("utf-8"))
    release_path = Path(config["release"]) / f"{name}.ipynb"
    release = json.loads(release_path.read_text("utf-8")) if release_path.is_file() else None
    stubs = {c.grade_id: c.source for c in notebooks.source_cells(release)} if release else {}
    by_id = {r.grade_id: r for r in notebook.cells}
    now = _answer_sources(json.loads(notebook.autograded)["cells"]) \
        if notebook.autograded is not None else {}
    answers_unchanged = before is not None and before == now
    for cell in notebooks.source_cells(source):
        if not cell.grade_id or cell.kind not in ("answer", "written", "test"):
            continue
        answer = notebook.answers.get(cell.grade_id)
        empty = answer is None or answer.strip() == stubs.get(cell.grade_id, "").strip()
        try:
            if cell.kind in ("answer", "written"):
                comment = gb.find_comment(cell.grade_id, name, ps, student)
                comment.auto_comment = "No response." if empty else None
            if not _is_graded(source, cell):
                continue
            grade = gb.find_grade(cell.grade_id, name, ps, student)
        except MissingEntry:
            notes.append(f"{name}: cell {cell.grade_id!r} is not in the release (added to "
                         "solutions/ since): not stored")
            continue
        old_auto = grade.auto_score
        if cell.kind == "test":
            result = by_id.get(cell.grade_id)
            grade.auto_score = _score(result, grade.max_score, notes, f"{name}: {cell.grade_id}")
            unchanged = answers_unchanged and grade.auto_score == old_auto
        else:                                           # written / manually graded answers
            grade.auto_score = 0.0 if empty else None
            unchanged = before is not None and grade.auto_score == old_auto and \
                before.get(cell.grade_id) == now.get(cell.grade_id)
        if grade.manual_score is None:
            grade.needs_manual_grade = grade.auto_score is None
        elif not unchanged:           # graded by hand, and the answer changed: review it
            grade.needs_manual_grade = True
    gb.find_submission_notebook(name, ps, student).flagged = flagged
    return notes


def _score(result, released_max: float, notes: list, where: str) -> float:
    """A test cell's score out of the points recorded at release (as ``nbgrader autograde``
    uses them): the fraction of the cell's points earned, never more than its maximum."""
    if result is None:
        return 0.0
    if result.max_points > 0:
        fraction = result.points / result.max_points
    else:
        fraction = 1.0 if result.passed else 0.0
    if result.max_points != released_max:
        notes.append(f"{where}: scored out of the {released_max:g} points released "
                     f"(solutions/ says {result.max_points:g})")
    return min(fraction, 1.0) * released_max if fraction > 0 else 0.0     # NaN: 0


def _is_graded(source: dict, cell) -> bool:
    meta = source["cells"][cell.index].get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade"))
