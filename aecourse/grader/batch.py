"""Grading a class: N submissions at a time, each in its own process, one writer, a report.

Each submission is graded by :func:`aecourse.grader.run.grade_submission` in a fresh process
started from a *forkserver* that has numpy, torch and aecourse already imported (no process is
reused: no memory of another student). A small scheduler keeps ``jobs`` of them running, gets
each result through a pipe, and turns a process that dies or overruns the submission's
deadline into "0 points, and why" for that student only; so does any exception while reading,
grading or writing one submission (logged with the student's id). The rest of the class is
always graded and written.
"""

from __future__ import annotations

import csv
import importlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import re
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

from aecourse.grader import gradebook, isolation, notebooks
from aecourse.grader.run import CellResult, NotebookResult, SubmissionResult, Task, grade_submission

__all__ = ["Batch", "safe_csv", "start_processes"]

PRELOAD = "aecourse.grader.preload"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_csv(value) -> str:
    """``value`` as a CSV field no spreadsheet runs: control characters removed, and a
    leading ``= + - @`` (or tab, carriage return) neutralised with ``'``."""
    text = _CONTROL.sub("", notebooks.clean(value)).replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _printable(text: str) -> str:
    return _CONTROL.sub("", notebooks.clean(text)).replace("\n", " ")


def _child(task: Task, connection) -> None:
    """The per-submission process (started by the forkserver): grade, send, exit."""
    try:
        result = grade_submission(task)
    except BaseException as error:  # noqa: BLE001  (contained: this student only)
        result = SubmissionResult(task.student, task.assignment,
                                  error=f"grading failed: {type(error).__name__}: {error}"[:2000])
        traceback.print_exc()
    connection.send(result)
    connection.close()


def failed(task: Task, reason: str) -> SubmissionResult:
    """0 points on every test of every notebook, with ``reason``."""
    result = SubmissionResult(task.student, task.assignment, error=reason)
    for path in sorted(Path(task.source).glob("*.ipynb")):
        import json
        cells = notebooks.source_cells(json.loads(path.read_text("utf-8")))
        result.notebooks.append(NotebookResult(
            path.stem, [CellResult(c.grade_id, "test", 0.0, c.points, False, reason)
                        for c in cells if c.kind == "test"], {}, missing=True))
    result.notes.append(reason)
    return result


def start_processes():
    """The multiprocessing context submissions are graded in, started now (call it early:
    the fork server imports :mod:`aecourse.grader.preload` while the caller goes on)."""
    if isolation.is_root():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([PRELOAD])
        multiprocessing.forkserver.ensure_running()
        return context
    # not isolated anyway, and a fork server may not start for every user: fork from here,
    # with the same modules imported once (not inside a timed cell)
    importlib.import_module(PRELOAD)
    return multiprocessing.get_context("fork")


class Batch:
    """Grade ``tasks`` with ``jobs`` processes; write each result as it arrives (unless
    ``write=False``: the results are only kept, e.g. the reference solution's, or a Dask
    worker's, whose client writes)."""

    def __init__(self, tasks: list[Task], config: dict, *, jobs: int, progress: bool = True,
                 log=sys.stderr, write: bool = True):
        self.tasks, self.config, self.log, self.write = tasks, config, log, write
        self.jobs = max(1, min(jobs, len(tasks) or 1))
        self.progress = progress
        self.results: list[SubmissionResult] = []

    def run(self) -> list[SubmissionResult]:
        context = start_processes()
        from tqdm.auto import tqdm
        bar = tqdm(total=len(self.tasks), desc=f"grading {self.tasks[0].assignment}"
                   if self.tasks else "grading", unit="submission",
                   disable=not self.progress or None)
        waiting, running, free = list(self.tasks), {}, list(range(self.jobs))
        try:
            while waiting or running:
                while waiting and free:
                    task = replace(waiting.pop(0), slot=free.pop(0))
                    receive, send = context.Pipe(duplex=False)
                    process = context.Process(target=_child, args=(task, send), daemon=True)
                    process.start()
                    send.close()
                    deadline = time.monotonic() + task.limits.submission + 60
                    running[receive] = (task, process, deadline)
                ready = multiprocessing.connection.wait(
                    [*running, *(p.sentinel for _, p, _ in running.values())], timeout=1.0)
                for receive in list(running):
                    task, process, deadline = running[receive]
                    result = self._collect(receive, process, task, deadline, ready)
                    if result is None:
                        continue
                    del running[receive]
                    free.append(task.slot)
                    self._write(task, result)
                    bar.update()
        finally:
            bar.close()
            for _, process, _ in running.values():
                process.kill()
        self.results.sort(key=lambda r: r.student)
        return self.results

    def _collect(self, receive, process, task, deadline, ready):
        """The result of one process if it is done (or must be stopped), else None."""
        if receive in ready or process.sentinel in ready:
            try:
                if receive.poll():
                    result = receive.recv()
                    process.join(5)
                    return result
            except (EOFError, OSError):
                pass
            process.join(5)
            if process.exitcode is None:
                return None
            return failed(task, f"the grading process of this submission died (exit code "
                                f"{process.exitcode})")
        if time.monotonic() > deadline:
            process.kill()
            process.join()
            return failed(task, f"grading this submission took longer than "
                                f"{task.limits.submission:g} s: stopped")
        return None

    def _write(self, task: Task, result: SubmissionResult) -> None:
        if not self.write:
            self.results.append(result)
            return
        if result.error and not result.notebooks:
            result = failed(task, result.error)
        try:
            result.notes += gradebook.write_result(result, self.config)
        except Exception as error:  # noqa: BLE001  (contained: logged, 0 points)
            print(f"aecourse grade: writing {task.student} failed: {error!r}", file=self.log)
            traceback.print_exc(file=self.log)
            result = failed(task, f"writing the result failed ({type(error).__name__}: "
                                  f"{str(error)[:300]})")
            try:
                gradebook.write_result(result, self.config)
            except Exception as again:  # noqa: BLE001
                print(f"aecourse grade: {task.student}: no grade written ({again!r})",
                      file=self.log)
        if result.error:
            print(f"aecourse grade: {task.student}: {_printable(result.error)}", file=self.log)
        self.results.append(result)

    # -- what people read
    def summary(self) -> str:
        """A table (student, points, max, flags, first reasons), then every flag and note."""
        rows = [("student", "points", "max", "flags", "reasons")]
        for r in self.results:
            cells = [c for nb in r.notebooks for c in nb.cells if c.kind == "test"]
            reasons = [f"{c.grade_id}: {(c.reason or '').splitlines()[0][:70] if c.reason else ''}"
                       for c in cells if not c.passed and c.reason]
            rows.append((_printable(r.student), f"{sum(c.points for c in cells):g}",
                         f"{sum(c.max_points for c in cells):g}", str(len(r.flags)),
                         _printable("; ".join(reasons[:2]) + (" ..." if len(reasons) > 2
                                                              else ""))))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row[:4], widths, strict=True)) + "  "
                 + row[4] for row in rows]
        for r in self.results:
            lines += [f"  {_printable(r.student)}: {_printable(line)}"
                      for line in r.flags + r.notes]
        return "\n".join(lines)

    def write_report(self, path: Path) -> None:
        """One CSV row per (student, test cell): points, reason, flags and notes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(["student", "notebook", "cell", "points", "max_points", "reason",
                          "flags", "notes"])
            for r in self.results:
                flags, notes = " | ".join(r.flags), " | ".join(r.notes)
                for nb in r.notebooks:
                    for c in nb.cells:
                        if c.kind == "test":
                            out.writerow([safe_csv(r.student), safe_csv(nb.name),
                                          safe_csv(c.grade_id), c.points, c.max_points,
                                          safe_csv((c.reason or "")[:500]), safe_csv(flags),
                                          safe_csv(notes)])
