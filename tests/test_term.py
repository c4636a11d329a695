"""A term of the course: late penalties exactly as nbgrader's, files handed back after grading as
root, and one whole term end to end with real Unix users through nbgrader's exchange."""

import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from aecourse.grader import late, ownership

pytestmark = pytest.mark.xdist_group("term")

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]
BIN = os.path.dirname(sys.executable)  # nbgrader runs `alembic` to create a gradebook
DUE = datetime.datetime(2026, 3, 1, 12, 0)

SOLUTION = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"
TEST = "assert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\n### END HIDDEN TESTS"
POLICY = '''
from nbgrader.plugins import LateSubmissionPlugin


class HalfPerDay(LateSubmissionPlugin):
    """Half the score per started day late (more than the score after two days)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return score * 0.5 * -(-total_seconds_late // 86400)
'''


def cell(source, grade_id, *, solution=False, points=None):
    meta = {"grade_id": grade_id, "solution": solution, "grade": points is not None,
            "locked": not solution, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def tiny_course(path, extra_config=""):
    """A course with one assignment ``tiny`` (2 points), released, due ``DUE``."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", path)
    with open(path / "nbgrader_config.py", "a") as fh:
        fh.write("\n" + extra_config + "\n")
    (path / "late_policy.py").write_text(POLICY)
    nb = nbformat.v4.new_notebook(cells=[cell(SOLUTION, "add", solution=True),
                                         cell(TEST, "test_add", points=2)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    source = path / "solutions" / "tiny" / "tiny.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(nb, source)
    run_nbgrader(path, "db", "assignment", "add", "tiny", f"--duedate={DUE.isoformat()}")
    run_nbgrader(path, "generate_assignment", "tiny")
    return path


def run_nbgrader(course, *args):
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course / ".no-user-config"),
           "PYTHONPATH": str(course), "PATH": BIN + os.pathsep + os.environ["PATH"]}
    return subprocess.run([*NBGRADER, *args], cwd=course, env=env, check=True,
                          capture_output=True, text=True, timeout=300)


def submit(course, student, late_by, *, correct=True):
    released = nbformat.read(course / "exercises" / "tiny" / "tiny.ipynb", as_version=4)
    if correct:
        released.cells[0].source = "def add(a, b):\n    return a + b"
    folder = course / "submitted" / student / "tiny"
    folder.mkdir(parents=True)
    nbformat.write(released, folder / "tiny.ipynb")
    stamp = (DUE + late_by).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    (folder / "timestamp.txt").write_text(stamp)


LATE_BY = {"ontime": datetime.timedelta(minutes=-5), "hour": datetime.timedelta(hours=1),
           "days": datetime.timedelta(days=2, seconds=1), "wrong": datetime.timedelta(hours=3)}


@pytest.fixture(scope="module")
def tiny_submitted(tmp_path_factory):
    """``tiny`` released, and four submissions: on time, an hour late, two days late, wrong."""
    course = tiny_course(tmp_path_factory.mktemp("tiny") / "course")
    for student, late_by in LATE_BY.items():
        submit(course, student, late_by, correct=student != "wrong")
    return course


@pytest.mark.slow
@pytest.mark.parametrize("policy_config, expected", [
    ("c.LateSubmissionPlugin.penalty_method = 'zero'",
     {"ontime": None, "hour": 2.0, "days": 2.0, "wrong": 0.0}),
    ("c.AssignLatePenalties.plugin_class = 'late_policy.HalfPerDay'",
     {"ontime": None, "hour": 1.0, "days": 2.0, "wrong": 0.0}),
])
def test_late_penalty_is_the_one_nbgrader_autograde_assigns(
        tiny_submitted, tmp_path, monkeypatch, policy_config, expected):
    course = Path(shutil.copytree(tiny_submitted, tmp_path / "course"))
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write("\n" + policy_config + "\n")
    run_nbgrader(course, "autograde", "tiny")

    monkeypatch.syspath_prepend(str(course))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(course / ".no-user-config"))
    config = late.course_config(course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        by_nbgrader = {s: gb.find_submission_notebook("tiny", "tiny", s).late_submission_penalty
                       for s in LATE_BY}
        for student in LATE_BY:
            gb.find_submission_notebook("tiny", "tiny", student).late_submission_penalty = 7.0
        gb.db.commit()
        ours = {s: late.apply_late_penalties(gb, "tiny", s, config) for s in LATE_BY}
        stored = {s: gb.find_submission_notebook("tiny", "tiny", s).late_submission_penalty
                  for s in LATE_BY}
    assert by_nbgrader == expected
    assert stored == by_nbgrader
    seconds = {s: LATE_BY[s].total_seconds() for s in LATE_BY}
    assert ours == {s: (max(0.0, seconds[s]), expected[s] or 0.0) for s in LATE_BY}


def test_late_penalty_of_an_on_time_notebook_is_none_whatever_the_policy(tmp_path):
    config = late.course_config(tmp_path)
    config.LateSubmissionPlugin.penalty_method = "zero"
    assert late.late_penalty(config, "alice", 5.0, 0.0) is None
    assert late.late_penalty(config, "alice", 5.0, 1.0) == 5.0


def test_course_config_makes_the_course_root_absolute_and_sets_the_exchange(monkeypatch):
    monkeypatch.chdir(ROOT / "book")
    monkeypatch.setenv("AECOURSE_EXCHANGE_ROOT", "/tmp/some-exchange")
    config = late.course_config(ROOT)
    assert config.CourseDirectory.root == str(ROOT)
    assert config.Exchange.root == "/tmp/some-exchange"
    assert config.CourseDirectory.db_url == f"sqlite:///{ROOT / 'gradebook.db'}"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_grading_as_root_hands_the_outputs_back_to_the_course_owner(tmp_path):
    course = tmp_path / "course"
    (course / "autograded" / "alice" / "ps1").mkdir(parents=True)
    (course / "autograded" / "alice" / "ps1" / "ps1.ipynb").write_text("{}")
    (course / "gradebook.db").write_text("")
    (course / "feedback").mkdir()
    os.symlink("/etc/hostname", course / "autograded" / "alice" / "link")
    owner = (4242, 4243)
    os.chown(course, *owner)
    before = os.stat("/etc/hostname")

    assert ownership.hand_back(course) == 7
    outputs = [course / "gradebook.db", course / "feedback", *(course / "autograded").rglob("*")]
    for entry in outputs:
        info = os.lstat(entry)
        assert (info.st_uid, info.st_gid) == owner, entry
    assert (os.stat("/etc/hostname").st_uid, os.stat("/etc/hostname").st_gid) == \
        (before.st_uid, before.st_gid)
    assert ownership.hand_back(course) == 0
    os.chown(course, 0, 0)
    assert ownership.hand_back(course) == 0
