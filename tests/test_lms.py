"""The roster and the LMS: every enrolled student gets a row, wide exports Canvas and Moodle
import, missing distinct from blank, and Canvas/Moodle download names collected by zip_collect."""

import csv
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from aecourse.grader import lms

pytestmark = pytest.mark.xdist_group("lms")

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]
DUE = datetime.datetime(2026, 3, 1, 12, 0)

ROSTER = """id,first_name,last_name,email,lms_user_id,sis_login_id,section
alice,Alice,Liddell,alice@uni.edu,1001,aliddell,A1
bob,Bob,Builder,bob@uni.edu,1002,,A1
carol,Carol,Danvers,carol@uni.edu,1003,,A2
dave,Dave,Bowman,=cmd|' /C calc'!A0,1004,,A2
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """A course directory with the repository's config, a roster and a graded ps1.

    alice 18/20 on time, bob 20/20 two hours late with the 'zero' policy's penalty stored,
    carol a blank submission (submitted, 0), dave never submitted. ps2 is registered by
    ``make release`` but never handed out.
    """
    tmp_path = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    roster = write(tmp_path / "students.csv", ROSTER)
    assert lms.roster_main(["import", str(roster), "--course-dir", str(tmp_path)]) == 0
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        for name in ("ps1", "ps2"):
            gb.update_or_create_assignment(name, duedate=DUE)
            gb.add_notebook(name, name)
            gb.add_grade_cell("q1", name, name, max_score=15, cell_type="code")
            gb.add_grade_cell("q2", name, name, max_score=5, cell_type="markdown")
        scores = {"alice": (15, 3), "bob": (15, 5), "carol": (0, 0)}
        times = {"alice": DUE, "bob": DUE + datetime.timedelta(hours=2), "carol": DUE}
        for student, (q1, q2) in scores.items():
            gb.add_submission("ps1", student, timestamp=times[student])
            gb.find_grade("q1", "ps1", "ps1", student).auto_score = q1
            gb.find_grade("q2", "ps1", "ps1", student).manual_score = q2
        gb.find_submission_notebook("ps1", "ps1", "bob").late_submission_penalty = 20.0
        gb.db.commit()
    return tmp_path


@pytest.fixture
def course(graded_course, tmp_path, monkeypatch):
    """A fresh copy of ``graded_course``, without the user's or the machine's Jupyter config."""
    monkeypatch.delenv("AECOURSE_EXCHANGE_ROOT", raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "no-user-config"))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", "")
    return Path(shutil.copytree(graded_course, tmp_path / "course"))


def read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def export(course, *args):
    out = course / "out.csv"
    assert lms.export_main([*args, "--to", str(out), "--course-dir", str(course)]) == 0
    return read(out)


def test_roster_import_gives_every_student_a_row_even_without_submission(course):
    rows = export(course, "--format", "csv")
    assert [row[0] for row in rows[1:]] == ["alice", "bob", "carol", "dave"]


def test_canvas_export_has_canvas_import_columns_and_only_released_assignments(course):
    rows = export(course, "--format", "canvas", "--roster", str(course / "students.csv"))
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ps1"],
        ["Points Possible", "", "", "", "", "20"],
        ["Liddell, Alice", "1001", "", "aliddell", "A1", "18"],
        ["Builder, Bob", "1002", "", "bob", "A1", "0"],
        ["Danvers, Carol", "1003", "", "carol", "A2", "0"],
        ["Bowman, Dave", "1004", "", "dave", "A2", "0"],
    ]


def test_moodle_export_has_an_identifier_column_per_user_field_and_a_column_per_item(course):
    rows = export(course, "--format", "moodle", "--missing-score", "blank")
    assert rows[0] == ["ID number", "Username", "Email address", "First name", "Last name", "ps1"]
    assert rows[1] == ["1001", "alice", "alice@uni.edu", "Alice", "Liddell", "18"]
    # a formula in the roster is neutralised; a missing submission is left blank on request
    assert rows[4] == ["1004", "dave", "'=cmd|' /C calc'!A0", "Dave", "Bowman", ""]


def test_csv_export_marks_missing_distinct_from_blank_and_late(course):
    rows = export(course, "--format", "csv", "--missing-score", "-1")
    assert rows[0][-2:] == ["ps1", "ps1 status"]
    status = {row[0]: row[-2:] for row in rows[1:]}
    assert status == {"alice": ["18", "submitted"], "bob": ["0", "late"],
                      "carol": ["0", "submitted"], "dave": ["-1", "missing"]}


def test_export_lists_an_assignment_released_to_the_exchange_before_any_submission(
        course, tmp_path, monkeypatch):
    exchange = tmp_path / "exchange"
    (exchange / "aecourse" / "outbound" / "ps2").mkdir(parents=True)
    monkeypatch.setenv("AECOURSE_EXCHANGE_ROOT", str(exchange))
    rows = export(course, "--format", "csv")
    assert rows[0][-4:] == ["ps1", "ps1 status", "ps2", "ps2 status"]
    assert [row[-2:] for row in rows[1:]] == [["0", "missing"]] * 4


@pytest.mark.parametrize("text, message", [
    ("name,email\nalice,a@b\n", "needs an 'id' column"),
    ("id,nickname\nalice,al\n", "unknown roster columns ['nickname']"),
    ("id,email\nalice,a@b\nalice,c@d\n", "'alice' appears twice"),
    ("id,email\n,a@b\n", "line 2: empty student id"),
])
def test_a_bad_roster_is_refused_with_what_was_expected(tmp_path, text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        lms.read_roster(write(tmp_path / "bad.csv", text))


def test_bad_missing_score_is_refused(course):
    with pytest.raises(ValueError, match="a number or 'blank', not 'none'"):
        export(course, "--missing-score", "none")


def notebook(text):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])
    return nbformat.writes(nb)


@pytest.mark.parametrize("lms_name, files", [
    ("canvas", {"liddellalice_1001_555001_ps1.ipynb": "alice",
                "builderbob_LATE_1002_555002_ps1-1.ipynb": "bob",
                "danverscarol_1003_555003_notes.txt": None,
                "stranger_9999_555004_ps1.ipynb": None}),
    ("moodle", {"Alice Liddell_310_assignsubmission_file_ps1.ipynb": "alice",
                "Bob Builder_311_assignsubmission_file_/ps1.ipynb": "bob",
                "Nobody Known_312_assignsubmission_file_ps1.ipynb": None}),
])
def test_zip_collect_files_lms_download_names_under_roster_ids(course, lms_name, files):
    write(course / "exercises" / "ps1" / "ps1.ipynb", notebook("pass"))
    archive = course / "downloaded" / "ps1" / "archive"
    for name, student in files.items():
        write(archive / name, notebook(f"# {student}"))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course / "no-user-config")}
    option = [] if lms_name == "canvas" else ["--LmsCollector.lms=moodle"]  # canvas: the default
    subprocess.run([*NBGRADER, "zip_collect", "ps1", *option],
                   cwd=course, env=env, check=True, capture_output=True, timeout=120)
    submitted = sorted(p.relative_to(course / "submitted").as_posix()
                       for p in (course / "submitted").rglob("*.ipynb"))
    assert submitted == ["alice/ps1/ps1.ipynb", "bob/ps1/ps1.ipynb"]
    for student in ("alice", "bob"):
        text = (course / "submitted" / student / "ps1" / "ps1.ipynb").read_text()
        assert f"# {student}" in text


def test_nbgrader_student_import_reads_the_roster(tmp_path):
    """The guide's alternative to ``aecourse roster import``: nbgrader's own columns only."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    write(tmp_path / "students.csv", "id,first_name,last_name,email\n"
                                     "alice,Alice,Liddell,alice@uni.edu\nbob,Bob,Builder,\n")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "no-user-config"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    subprocess.run([*NBGRADER, "db", "student", "import", "students.csv"], cwd=tmp_path,
                   env=env, check=True, capture_output=True, timeout=120)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        assert sorted((s.id, s.last_name, s.email) for s in gb.students) == \
            [("alice", "Liddell", "alice@uni.edu"), ("bob", "Builder", None)]
