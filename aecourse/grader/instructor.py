"""The instructor's code, run in the grading process: setup and test cells.

:func:`trusted` runs a cell here with its output discarded, under a wall-clock deadline.
:func:`leading_setup` runs the release's setup cells before its first answer, test or written
cell *once*, before the worker is forked, so that the worker and the tests both inherit the
namespace by fork (they are in the release: nothing secret). Later setup cells run in both
processes, in the notebook's order, as before.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from aecourse.grader import notebooks
from aecourse.grader.session import Overrun, StudentError, WorkerDied, alarm

__all__ = ["failure", "trusted", "leading_setup"]


def failure(error: BaseException) -> str:
    """``error`` as a reason a person reads (the student's message as it is)."""
    if isinstance(error, (WorkerDied, StudentError, Overrun)):
        return str(error)
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # noqa: BLE001
        return type(error).__name__


def trusted(code: str, namespace: dict, name: str, seconds: float) -> None:
    """Run the instructor's code here, output discarded, under a wall-clock deadline."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            alarm(seconds, f"the {name} cell"):
        exec(compile(code, f"<{name}>", "exec"), namespace)  # noqa: S102  (instructor's code)


def leading_setup(release: Path, namespace: dict, seconds: float) -> tuple[list, list[str]]:
    """Run the ``release`` notebook's leading setup cells in ``namespace`` (``seconds`` each);
    the cells run, and a note on each that failed."""
    cells = []
    for cell in notebooks.source_cells(json.loads(release.read_text("utf-8"))) \
            if release.is_file() else []:
        if cell.kind in ("answer", "test", "written"):
            break
        if cell.kind == "setup" and cell.source.strip():
            cells.append(cell)
    if cells and "torch" in sys.modules:    # no OpenMP thread pool across the coming fork
        sys.modules["torch"].set_num_threads(1)
    namespace["__name__"], notes = "__main__", []
    for cell in cells:
        try:
            trusted(cell.source, namespace, f"setup {cell.grade_id}", seconds)
        except BaseException as error:  # noqa: BLE001  (a note, never a crash)
            notes.append(f"setup cell {cell.grade_id or cell.index!r} failed: "
                         f"{(failure(error) + chr(10)).splitlines()[0][:300]}")
    return cells, notes
