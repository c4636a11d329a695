"""``aecourse grade``: a hostile class is graded correctly, in isolation, repeatably.

One batch grades every submission of ``tests/hostile/corpus.py`` (about 45 students of the tiny
``hw`` assignment, one or more per finding of issue 14) through the real command line, under
``--timeout 5 --memory 1024 --jobs 2``; the tests then read only what an instructor sees:
nbgrader's gradebook, ``autograded/``, the CSV report, the feedback pages and the command's
output. Expected points come from the corpus, reasoned per case; the honest students sit in
the same batch and must keep every point.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import html.parser
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import nbformat
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AECOURSE = Path(sys.executable).with_name("aecourse")
NBGRADER = Path(sys.executable).with_name("nbgrader")
# --skip-solution-check: the batch's "honest" students show the reference earns every point
OPTIONS = ["--timeout", "5", "--memory", "1024", "--jobs", "2", "--skip-solution-check"]
BATCH_SECONDS = 180        # the whole hostile batch, --jobs 2 on two shared cores

_spec = importlib.util.spec_from_file_location("hostile_corpus", HERE / "hostile" / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

# One worker grades the batch once (with ``--dist loadgroup``); the tests only read its results.
pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
              pytest.mark.xdist_group("hostile")]


GRADER_PEAK_KB = 1_000_000     # resident memory of any grader-side process (not a worker)


def grade(course: Path, assignment: str = "hw", *extra: str, peak: dict | None = None) -> str:
    """``aecourse grade`` in ``course``; ``peak["kB"]``: the largest peak resident memory of
    a process of the run that kept our user id (the grader's own, not a student worker's)."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    with subprocess.Popen([str(AECOURSE), "grade", assignment, *OPTIONS, *extra], cwd=course,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        monitor = _PeakMemory(process.pid)
        monitor.start()
        try:
            stdout, stderr = process.communicate(timeout=4 * BATCH_SECONDS)
        finally:
            process.kill()
            monitor.done.set()
            monitor.join()
    if peak is not None:
        peak["kB"], peak["process"] = monitor.peak, monitor.where
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return stdout


class _PeakMemory(threading.Thread):
    """Samples VmHWM (peak resident memory) of every descendant of ``pid`` that runs as us."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.done, self.peak, self.where = pid, threading.Event(), 0, ""

    def run(self):
        while not self.done.wait(0.25):
            self.sample()

    def sample(self):
        children = collections.defaultdict(list)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                children[int(stat.read_text().rsplit(")", 1)[1].split()[1])].append(
                    int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                pass
        family, todo = [], [self.pid]
        while todo:
            family.append(todo.pop())
            todo += children.get(family[-1], [])
        for pid in family:
            try:
                status = dict(line.split(":", 1) for line in
                              Path(f"/proc/{pid}/status").read_text().splitlines()
                              if ":" in line)
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()[:200]
            except OSError:
                continue
            if int(status["Uid"].split()[1]) == os.geteuid() and "VmHWM" in status:
                kilobytes = int(status["VmHWM"].split()[0])
                if kilobytes > self.peak:
                    self.peak, self.where = kilobytes, cmdline.replace(b"\0", b" ").decode(
                        errors="replace")


def gradebook_scores(db_url: str, assignment: str = "hw", course_id: str = "hostile") -> dict:
    """student -> {grade cell -> auto_score}, and the number of grade rows per (student, cell)."""
    from nbgrader.api import Gradebook
    scores, rows = {}, collections.Counter()
    with Gradebook(db_url, course_id=course_id) as gb:
        for submission in gb.assignment_submissions(assignment):
            student = submission.student.id
            for notebook in submission.notebooks:
                for grade_row in notebook.grades:
                    scores.setdefault(student, {})[grade_row.name] = grade_row.auto_score
                    rows[student, grade_row.name] += 1
    return scores, rows


def read_report(path: Path) -> list[dict]:
    """The rows of ``aecourse grade``'s CSV report (one per student and graded cell)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def auto_points(cells: dict) -> float:
    return sum(v for k, v in cells.items() if k.startswith("test_") and v is not None)


def digest(folder: Path) -> dict:
    """path -> hash of every file under ``folder``; a symbolic link -> its target."""
    return {str(p.relative_to(folder)): os.readlink(p) if p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


class Listener:
    """A TCP server on loopback that records every connection made to it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    self.received.append(connection.recv(100))
                except OSError:
                    self.received.append(b"")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    course = corpus.make_course(root / "course")
    listener = Listener()
    corpus.submit(course, corpus.CASES, port=listener.port)
    before = {"submitted": digest(course / "submitted"), "solutions": digest(course / "solutions"),
              "library": digest(REPO / "aecourse")}
    start, peak = time.monotonic(), {}
    stdout = grade(course, peak=peak)
    seconds = time.monotonic() - start
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    scores, rows = gradebook_scores(db_url)
    yield dict(course=course, root=root, stdout=stdout, listener=listener, before=before,
               db_url=db_url, scores=scores, rows=rows, seconds=seconds, peak=peak,
               report=read_report(course / "autograded" / "aecourse_report_hw.csv"))
    listener.server.close()


# ---------------------------------------------------------------- points
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(corpus.CASES))
def test_each_submission_earns_exactly_its_points(batch, case):
    assert case in batch["scores"], f"{case} has no grades; run output:\n{batch['stdout']}"
    assert auto_points(batch["scores"][case]) == corpus.CASES[case]["points"]


@pytest.mark.slow
def test_no_submission_holds_the_batch_up(batch):
    # Each limit (a cell, a callback, a slow object, a fork bomb ...) ends within about the
    # --timeout of 5 s; unbounded, one case alone would take minutes.
    assert batch["seconds"] < BATCH_SECONDS, f"the hostile batch took {batch['seconds']:.0f} s"


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="workers run as another user only under root")
def test_the_grader_never_holds_a_huge_answer_in_its_own_memory(batch):
    # huge_answer returns 1.9 GB of arrays and huge_callback_input sends 320 MB to a grader-side
    # function: the grader must refuse them before reading, not decode them.
    assert batch["peak"]["kB"] < GRADER_PEAK_KB, batch["peak"]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(c for c in corpus.CASES if corpus.CASES[c].get("note")))
def test_each_oddity_is_a_note_naming_the_student(batch, case):
    rows = [row for row in batch["report"] if row["student"] == case]
    assert rows, f"{case} is not in the report"
    assert all(row["notes"].strip() for row in rows), f"{case}: no note in {rows[0]}"
    assert f"{case}: " in batch["stdout"], "the command's output does not show the note"


@pytest.mark.slow
def test_report_cells_cannot_inject_formulas_or_terminal_escapes(batch):
    text = (batch["course"] / "autograded" / "aecourse_report_hw.csv").read_text("utf-8")
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert not [c for c in text if unicodedata.category(c) == "Cc" and c not in "\r\n\t"]
    students = {row["student"] for row in batch["report"]}
    assert "csv_injection" in students
    for row in batch["report"]:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)
    assert "\x1b" not in batch["stdout"] and "\x07" not in batch["stdout"]


def feedback_page(course: Path, student: str) -> str:
    """``nbgrader generate_feedback`` for one student of ``hw``; the HTML page."""
    subprocess.run([str(NBGRADER), "generate_feedback", "hw", "--student", student], cwd=course,
                   env={"PATH": f"{NBGRADER.parent}:/usr/bin:/bin"}, check=True,
                   capture_output=True)
    return (course / "feedback" / student / "hw" / "hw.html").read_text()


class _LiveHTML(html.parser.HTMLParser):
    """Scripts and event-handler attributes of an HTML page, as a browser would see them."""

    def __init__(self):
        super().__init__()
        self.handlers, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.handlers += [f"<{tag} {k}={v}>" for k, v in attrs if k.startswith("on")]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


@pytest.mark.slow
def test_student_html_is_not_live_in_the_feedback(batch):
    page = feedback_page(batch["course"], "xss_written")
    live = _LiveHTML()
    live.feed(page)
    assert [h for h in live.handlers if "xss-" in h] == []
    assert [s for s in live.scripts if "xss-" in s] == []
    assert "xss-img" in page and "xss-script" in page          # shown, as text


@pytest.mark.slow
def test_honest_students_keep_every_point_beside_hostile_ones(batch):
    source = nbformat.read(corpus.SOURCE, as_version=4)
    full = {corpus.meta(c)["grade_id"]: float(corpus.meta(c)["points"]) for c in source.cells
            if corpus.meta(c).get("grade") and c.cell_type == "code"}
    for student in ("honest", "honest_too"):
        got = {k: v for k, v in batch["scores"][student].items() if k in full}
        assert got == full


@pytest.mark.slow
def test_written_answers_are_left_for_manual_grading(batch):
    assert batch["scores"]["honest"]["written_mean"] is None      # to be graded by hand
    assert batch["scores"]["blank"]["written_mean"] == 0.0         # "No response."


@pytest.mark.slow
def test_regrading_gives_identical_grades_and_one_row_per_student_and_cell(batch):
    again = ["honest", "blank", "kernel_exit", "invalid_json", "redefines_helpers"]
    grade(batch["course"], "hw", "--student", *again)
    scores, rows = gradebook_scores(batch["db_url"])
    assert scores == batch["scores"]
    assert set(rows.values()) == {1}
    assert len(rows) == len(corpus.CASES) * 4                   # 3 test cells + 1 written answer


# ---------------------------------------------------------------- containment
@pytest.mark.slow
def test_submissions_cannot_change_files_outside_their_scratch_copy(batch):
    course = batch["course"]
    assert digest(course / "submitted") == batch["before"]["submitted"]
    assert digest(course / "solutions") == batch["before"]["solutions"]
    assert digest(REPO / "aecourse") == batch["before"]["library"]
    assert not (course / "evil.txt").exists() and not (batch["root"] / "evil_outside.txt").exists()
    assert not list(course.rglob("scratch_is_fine.txt"))         # the scratch copy is discarded
    assert not list(course.rglob("filler_*.bin"))
    assert (course / "gradebook.db").stat().st_size > 0


@pytest.mark.slow
def test_submissions_have_no_network(batch):
    with socket.create_connection(("127.0.0.1", batch["listener"].port), timeout=2) as probe:
        probe.sendall(b"probe")                                    # the listener does work ...
    deadline = 50
    while len(batch["listener"].received) < 1 and deadline:
        threading.Event().wait(0.1)
        deadline -= 1
    assert batch["listener"].received == [b"probe"]                # ... and only we reached it


@pytest.mark.slow
def test_no_student_process_outlives_the_batch(batch):
    leftovers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"987654" in cmdline.read_bytes() and b"sleep" in cmdline.read_bytes():
                leftovers.append(cmdline.parent.name)
        except OSError:
            pass
    assert leftovers == []


@pytest.mark.slow
def test_output_floods_are_capped(batch):
    notebook = batch["course"] / "autograded" / "output_flood" / "hw" / "hw.ipynb"
    assert notebook.stat().st_size < 200_000
    assert len(batch["stdout"]) < 200_000


# ---------------------------------------------------------------- what people see
@pytest.mark.slow
def test_feedback_names_the_reason_for_each_fault(batch):
    def errors(student):
        nb = nbformat.read(batch["course"] / "autograded" / student / "hw" / "hw.ipynb", 4)
        return " ".join(o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
                        for o in c.outputs)
    assert "stopped after 5 s of wall-clock time" in errors("infinite_loop")
    assert "exit status 3" in errors("kernel_exit")
    assert "SIGKILL" in errors("kernel_kill")
    assert "memory" in errors("memory_bomb").lower()
    assert "DelegationError" in errors("delegates")
    assert not errors("honest")


@pytest.mark.slow
def test_nbgrader_feedback_and_export_work_on_the_result(batch):
    course, env = batch["course"], {"PATH": f"{NBGRADER.parent}:/usr/bin:/bin"}
    assert "stopped after 5 s" in feedback_page(course, "infinite_loop")
    subprocess.run([str(NBGRADER), "export"], cwd=course, env=env, check=True,
                   capture_output=True)
    lines = (course / "grades.csv").read_text().splitlines()
    raw = {line.split(",")[3]: float(line.split(",")[7]) for line in lines[1:]}
    assert raw == {case: float(c["points"]) for case, c in corpus.CASES.items()}


@pytest.mark.slow
def test_tampering_is_flagged_and_structural_changes_are_reported(batch):
    from nbgrader.api import Gradebook
    with Gradebook(batch["db_url"], course_id="hostile") as gb:
        flagged = {s.student.id for s in gb.assignment_submissions("hw")
                   if any(nb.flagged for nb in s.notebooks)}
    tamper = {case for case, c in corpus.CASES.items() if c.get("tamper")}
    innocent = {case for case, c in corpus.CASES.items() if c.get("tamper") is False}
    assert tamper <= flagged, f"not flagged: {sorted(tamper - flagged)}"
    assert not innocent & flagged, f"flagged without tampering: {sorted(innocent & flagged)}"
    out = batch["stdout"]
    assert "deleted_test_cell: hw: test cell 'test_rel_error' was deleted" in out
    assert "deleted_answer_cell: hw: answer cell 'rel_error' was deleted" in out
    assert "cell_type_changed: hw: answer cell 'rel_error' was changed to a markdown cell" in out
    assert "reordered_cells: hw: cells were reordered" in out
    assert "test_edited_to_pass: hw: test cell 'test_rel_error' was edited" in out


# ---------------------------------------------------------------- the command line
def test_the_command_explains_itself():
    done = subprocess.run([str(AECOURSE), "grade", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--student", "--jobs", "--timeout", "--memory", "--cpu", "--db-url",
                   "--course-dir"):
        assert option in done.stdout
