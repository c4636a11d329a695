"""The release's leading setup cells run once per submission, before the worker is forked.

Grader and worker both inherit their namespace by fork (the worker still before anything secret
is read); later setup cells still run in both, as the notebook orders them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aecourse
from aecourse.grader.isolation import Limits
from aecourse.grader.run import Task, grade_submission

LIBRARY = Path(aecourse.__file__).resolve().parents[1]     # visible to the worker


def _cell(kind: str, source: str, grade_id: str, points: int = 0) -> dict:
    meta = {"grade": kind == "test", "solution": kind == "answer", "grade_id": grade_id,
            "locked": kind != "answer", "schema_version": 3, "task": False}
    if kind == "test":
        meta["points"] = points
    return {"cell_type": "code", "execution_count": None, "outputs": [], "source": source,
            "metadata": {"nbgrader": meta} if kind != "plain" else {}}


NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    _cell("setup", "import os\nRUNS = globals().get('RUNS', 0) + 1\nSETUP_PID = os.getpid()\n",
          "setup"),
    _cell("plain", "SQUARES = [i * i for i in range(RUNS + 2)]\n", ""),
    _cell("answer", "def seen():\n    return RUNS, SETUP_PID, len(SQUARES)\n", "seen"),
    _cell("test", "assert RUNS == 1 and seen() == (1, SETUP_PID, 3), (RUNS, seen(), SETUP_PID)\n",
          "test_once", 2),
    _cell("plain", "LATER = RUNS * 10\n", ""),
    _cell("answer", "def later():\n    return LATER\n", "later"),
    _cell("test", "assert later() == LATER == 10\n", "test_later", 1),
]}


def test_leading_setup_runs_once_and_both_sides_inherit_it(tmp_path):
    course = tmp_path / "course"
    for folder in ("solutions/hw", "exercises/hw", "submitted/s/hw"):
        (course / folder).mkdir(parents=True)
        (course / folder / "hw.ipynb").write_text(json.dumps(NOTEBOOK))
    keep = (str(course), sys.prefix, sys.base_prefix, str(LIBRARY))
    task = Task(student="s", assignment="hw", course=str(course),
                source=str(course / "solutions/hw"), release=str(course / "exercises/hw"),
                submitted=str(course / "submitted"),
                hidden=((str(course / "solutions"), True), (str(course / "submitted"), True)),
                keep=tuple(str(Path(k).resolve()) for k in keep),
                limits=Limits(timeout=30, submission=120))
    result = grade_submission(task)
    cells = {c.grade_id: (c.points, c.reason) for nb in result.notebooks for c in nb.cells
             if c.kind == "test"}
    assert cells == {"test_once": (2.0, None), "test_later": (1.0, None)}, result
    assert result.error is None and result.notes == []
