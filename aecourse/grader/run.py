"""Grading one submission: :func:`grade_submission` (a plain function of plain data).

The release's leading setup cells (imports, data: nothing secret; one-notebook assignments) run
once, here, then the worker of each notebook is forked, inheriting that namespace, *before*
this process reads the source notebook or any test, so it holds nothing secret
(:mod:`aecourse.grader.instructor`). Then, cell by cell in the source's order: later setup
cells run here (under a deadline) and in the worker; answer cells (and any code cell the
student added) run in the worker only; the names each submitted answer binds at top level (read
from its source, never from the worker) become proxies or plain values in the test namespace,
unless the setup already binds them; test cells run here, on those proxies, under a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

from aecourse.grader import cgroups, files, flags, gradebook, isolation, notebooks
from aecourse.grader.instructor import failure, leading_setup, trusted
from aecourse.grader.process import Spawn, spawn
from aecourse.grader.session import Overrun, Remote, Session, StudentError, WorkerDied

__all__ = ["Task", "CellResult", "NotebookResult", "SubmissionResult", "grade_submission"]


@dataclass(frozen=True)
class Task:
    """One student's submission of one assignment, and where everything is."""

    student: str
    assignment: str
    course: str
    source: str                   # solutions/<ps>
    release: str                  # exercises/<ps>
    submitted: str                # submitted/ (all students)
    hidden: tuple = ()            # (path, is_dir) the worker must not see
    keep: tuple = ()              # trees that stay visible (read-only) under /tmp
    limits: isolation.Limits = field(default_factory=isolation.Limits)
    slot: int = 0
    db_url: str = ""              # the gradebook holds the test cells nbgrader runs
    course_id: str = ""


@dataclass
class CellResult:
    grade_id: str
    kind: str                     # "test", "answer" or "written"
    points: float = 0.0
    max_points: float = 0.0
    passed: bool = False
    reason: str | None = None


@dataclass
class NotebookResult:
    name: str
    cells: list
    answers: dict
    missing: bool = False
    autograded: str | None = None


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    notebooks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    flags: list = field(default_factory=list)
    isolated: bool = False
    output: str = ""
    seconds: float = 0.0
    error: str | None = None      # the whole submission failed, and why


def _bind(session: Session, names: set, namespace: dict, installed: dict, notes: list) -> None:
    """Bind the student's ``names`` in the test namespace from what the worker holds now."""
    described = {}
    for name in sorted(names):                  # one by one: one odd value spoils no other
        try:
            one = session.request({"op": "describe", "names": [name]}, f"your {name!r}")
            described.update(one if isinstance(one, dict) else {})
        except StudentError as error:
            notes.append(f"{name!r} is left out of the tests: {str(error)[:200]}")
        except WorkerDied:
            break
    for name in sorted(names):
        if name in namespace and name not in installed:          # the setup's: stays trusted
            if described.get(name, "module") != "module" and \
                    not isinstance(namespace[name], types.ModuleType):
                notes.append(f"your code rebinds {name!r}, which the assignment's setup "
                             "defines: the tests use the setup's")
            continue
        kind = described.get(name)
        namespace.pop(name, None)
        installed.pop(name, None)
        if kind == "callable":
            namespace[name] = installed[name] = Remote(session, ("global", name))
        elif isinstance(kind, list) and len(kind) == 1:
            namespace[name] = installed[name] = kind[0]


def grade_notebook(name: str, source: dict, submission, session: Session, limits,
                   namespace: dict | None = None, done: tuple = ()) -> list:
    """Run one notebook (answers in the worker, tests here); results and notes.

    ``namespace`` holds the setup cells already run (``done``: their sources, in order)
    before the worker was forked; those cells are not run again."""
    cells, installed, results = notebooks.source_cells(source), {}, []
    namespace, done = {} if namespace is None else namespace, list(done)
    namespace["__name__"] = "__aecourse_test__"
    session.namespace, session.bound = namespace, installed
    notes = session.notes = submission.notes
    session.start()

    def student(code: str, cell: str) -> str | None:
        session.begin_cell()
        error = session.execute(code, cell)
        session.student_names |= notebooks.bound_names(code)
        _bind(session, notebooks.bound_names(code), namespace, installed, notes)
        return error

    for code in submission.extra.get("", []):
        student(code, "added")
    for cell in cells:
        if cell.kind == "setup" and done and cell.source == done[0]:
            done.pop(0)                          # ran once, before the worker was forked
        elif cell.kind == "setup":
            try:
                trusted(cell.source, namespace, f"setup {cell.grade_id}", limits.timeout)
            except BaseException as error:  # noqa: BLE001  (a note, never a crash)
                notes.append(f"setup cell {cell.grade_id or cell.index!r} failed in the "
                             f"grader: {(failure(error) + chr(10)).splitlines()[0][:300]}")
            session.begin_cell()                 # may fail there, e.g. on a name a test
            session.execute(cell.source, cell.grade_id or f"setup {cell.index}")  # defined
        elif cell.kind == "answer":
            error = student(submission.answers.get(cell.grade_id, ""), cell.grade_id)
            results.append(CellResult(cell.grade_id, "answer", reason=error))
        elif cell.kind == "written":
            results.append(CellResult(cell.grade_id, "written", max_points=cell.points))
        elif cell.kind == "test":
            session.begin_cell()
            try:
                trusted(cell.source, namespace, f"test {cell.grade_id}", limits.timeout)
                results.append(CellResult(cell.grade_id, "test", cell.points, cell.points, True))
            except BaseException as error:  # noqa: BLE001  (SystemExit from a test fails it)
                if isinstance(error, Overrun) and session.worker is not None:
                    session.worker.kill()        # mid-request: its answers can't be trusted
                    session.worker, session.death = None, str(error)
                results.append(CellResult(cell.grade_id, "test", 0.0, cell.points, False,
                                          notebooks.clean(failure(error))[:20000]))
        for code in submission.extra.get(cell.grade_id, []) if cell.grade_id else []:
            student(code, "added")
    return results


def _use_stored_tests(source: dict, stored: dict) -> None:
    """Test cells as the gradebook has them (e.g. nbgrader's autotests instantiated)."""
    for cell in notebooks.source_cells(source):
        if cell.kind == "test" and cell.grade_id in stored:
            source["cells"][cell.index]["source"] = stored[cell.grade_id]


def grade_submission(task: Task) -> SubmissionResult:
    """Grade one student's submission of one assignment (all its notebooks)."""
    started, limits = time.monotonic(), task.limits
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    root = isolation.is_root()
    result = SubmissionResult(task.student, task.assignment, isolated=root)
    folder = Path(task.submitted) / task.student / task.assignment
    copied, notes = ([], []) if folder.is_symlink() or not folder.is_dir() else \
        files.collect_files(folder, limits.fsize * 2**20)
    result.notes += [notebooks.clean(n) for n in notes]
    names = sorted(p.stem for p in Path(task.source).glob("*.ipynb"))
    scratch = Path(tempfile.mkdtemp(prefix="aecourse-grade-"))
    sessions, prepared = {}, {}
    try:
        for name in names:                   # forked before anything secret is read
            namespace, setup = {}, []
            if len(names) == 1:              # (with several, one's setup would reach others)
                setup, notes = leading_setup(Path(task.release) / f"{name}.ipynb", namespace,
                                             task.limits.timeout)
                result.notes += [f"{name}: {n}" for n in notes]
            plan = isolation.mount_plan(task.course, list(task.hidden), list(task.keep),
                                        [t for t in isolation.TMPS if os.path.isdir(t)],
                                        limits.fsize,
                                        [h for h in isolation.HOMES if os.path.isdir(h)]) \
                if root else None
            spec = Spawn(plan, copied, Path("/tmp/work") if root else scratch / name,
                         isolation.uid_for_slot(task.slot) if root else None, limits,
                         f"{os.getpid()}-{name}" if root else None)
            sessions[name] = Session(spec, spawn(spec, namespace=namespace), guarded=[],
                                     deadline=started + limits.submission)
            sessions[name].replay = [{"op": "exec", "cell": c.grade_id or f"setup {c.index}",
                                      "code": c.source} for c in setup]   # after a restart
            prepared[name] = (namespace, tuple(c.source for c in setup))
        for name in names:
            source = json.loads((Path(task.source) / f"{name}.ipynb").read_text("utf-8"))
            if task.db_url:
                _use_stored_tests(source, gradebook.stored_tests(
                    task.db_url, task.course_id, task.assignment, name))
            release_path = Path(task.release) / f"{name}.ipynb"
            release = json.loads(release_path.read_text("utf-8")) if release_path.is_file() \
                else None
            cells = notebooks.source_cells(source)
            data = files.read_file(folder / f"{name}.ipynb", notebooks.MAX_NOTEBOOK_BYTES + 1)
            submission = notebooks.read_submission(data, f"{name}.ipynb", cells)
            session = sessions[name]
            session.guarded = notebooks.guarded_names([c.source for c in cells
                                                       if c.kind == "test"])
            if submission.fatal:
                result.notes.append(f"{name}: {submission.fatal}")
                results = [CellResult(c.grade_id, "test", 0.0, c.points, False, submission.fatal)
                           for c in cells if c.kind == "test"]
                result.notebooks.append(NotebookResult(name, results, {}, missing=True))
                continue
            try:
                results = grade_notebook(name, source, submission, session, limits,
                                         *prepared[name])
            finally:
                session.close()
                result.output += session.output.decode("utf-8", "replace")
            result.notes += [f"{name}: {n}" for n in submission.notes]
            for code in [*submission.answers.values(),
                         *(c for codes in submission.extra.values() for c in codes)]:
                result.flags += [f"{name}: {flag}" for flag in flags.tamper_indicators(code)]
            errors = {r.grade_id: r.reason for r in results if r.reason and r.kind != "written"}
            result.notebooks.append(NotebookResult(
                name, results, submission.answers,
                autograded=notebooks.autograded_notebook(source, release, submission.answers,
                                                         errors)))
    finally:
        for name, session in sessions.items():
            session.close()
            cgroups.remove_cgroups(f"{os.getpid()}-{name}")
        shutil.rmtree(scratch, ignore_errors=True)
    result.output = notebooks.clean(result.output)
    result.flags = sorted(set(result.flags))
    result.seconds = time.monotonic() - started
    return result
