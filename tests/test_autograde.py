"""``aecourse grade``: a hostile class is graded correctly, in isolation, repeatably.

One batch grades every submission of ``tests/hostile/corpus.py`` (about 25 students of the tiny
``hw`` assignment) through the real command line; the tests then read nbgrader's gradebook.
Expected points come from the corpus, reasoned per case; the honest students sit in the same
batch and must keep every point.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from aecourse import autograde, sandbox

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
AECOURSE = Path(sys.executable).with_name("aecourse")
NBGRADER = Path(sys.executable).with_name("nbgrader")
OPTIONS = ["--timeout", "8", "--memory", "512", "--jobs", "2"]

_spec = importlib.util.spec_from_file_location("hostile_corpus", HERE / "hostile" / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def grade(course: Path, assignment: str = "hw", *extra: str) -> str:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([str(AECOURSE), "grade", assignment, *OPTIONS, *extra], cwd=course,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


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


def auto_points(cells: dict) -> float:
    return sum(v for k, v in cells.items() if k.startswith("test_") and v is not None)


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


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
    stdout = grade(course)
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    scores, rows = gradebook_scores(db_url)
    yield dict(course=course, root=root, stdout=stdout, listener=listener, before=before,
               db_url=db_url, scores=scores, rows=rows)
    listener.server.close()


# ---------------------------------------------------------------- points
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(corpus.CASES))
def test_each_submission_earns_exactly_its_points(batch, case):
    assert case in batch["scores"], f"{case} has no grades; run output:\n{batch['stdout']}"
    assert auto_points(batch["scores"][case]) == corpus.CASES[case]["points"]


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
    assert "stopped after 8 s of wall-clock time" in errors("infinite_loop")
    assert "exit status 3" in errors("kernel_exit")
    assert "SIGKILL" in errors("kernel_kill")
    assert "MemoryError" in errors("memory_bomb")
    assert "DelegationError" in errors("delegates")
    assert not errors("honest")


@pytest.mark.slow
def test_nbgrader_feedback_and_export_work_on_the_result(batch):
    course, env = batch["course"], {"PATH": f"{NBGRADER.parent}:/usr/bin:/bin"}
    subprocess.run([str(NBGRADER), "generate_feedback", "hw", "--student", "infinite_loop"],
                   cwd=course, env=env, check=True, capture_output=True)
    html = (course / "feedback" / "infinite_loop" / "hw" / "hw.html").read_text()
    assert "stopped after 8 s" in html
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
    assert flagged == {"redefines_helpers"}       # passes in its own kernel, fails isolated
    out = batch["stdout"]
    assert "deleted_test_cell: hw: test cell 'test_rel_error' was deleted" in out
    assert "deleted_answer_cell: hw: answer cell 'rel_error' was deleted" in out
    assert "cell_type_changed: hw: answer cell 'rel_error' was changed to a markdown cell" in out
    assert "reordered_cells: hw: cells were reordered" in out
    assert "test_edited_to_pass: hw: test cell 'test_rel_error' was edited" in out


# ---------------------------------------------------------------- the wire format (fast)
def round_trip(value):
    payloads: list = []
    tree = sandbox.encode(value, payloads, lambda v: {"t": "handle", "id": 7, "callable": False,
                                                      "type": type(v).__name__})
    header = json.loads(json.dumps(tree))
    buffers = []
    for array in payloads:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        buffers.append(np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False))
    return sandbox.decode(header, buffers, lambda number, is_callable, type_name:
                          ("handle", number, type_name))


def test_plain_data_travels_by_value_with_exact_types():
    value = {"a": [1, 2.5, None, True, "s"], 3: (np.arange(6).reshape(2, 3), np.float32(1.5)),
             "z": complex(1, -2), "nan": float("nan")}
    back = round_trip(value)
    assert back["a"] == [1, 2.5, None, True, "s"] and type(back["a"][3]) is bool
    assert isinstance(back[3], tuple) and back[3][0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert type(back[3][1]) is np.float32 and back[3][1] == np.float32(1.5)
    assert back["z"] == complex(1, -2) and np.isnan(back["nan"])
    tensor = round_trip(torch.nn.Parameter(torch.ones(2, 3)))
    assert type(tensor) is torch.Tensor and tensor.tolist() == [[1.0] * 3] * 2


def test_subclasses_arrive_as_their_base_type():
    class Liar(float):
        def __eq__(self, other):
            return True

    back = round_trip([Liar(0.5)])
    assert type(back[0]) is float and back[0] != 0.25


def test_other_objects_stay_behind_as_handles():
    assert round_trip((object(), 1)) == (("handle", 7, "object"), 1)


def test_an_answer_holding_a_pickled_array_is_refused(tmp_path):
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Bomb()], dtype=object), allow_pickle=True)
    head = json.dumps({"ok": True, "value": {"t": "nd", "i": 0}, "n_payloads": 1}).encode()
    frame = struct.pack("<I", len(head)) + head + struct.pack("<Q", buffer.tell()) + \
        buffer.getvalue()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, frame)
    os.close(write_fd)
    with pytest.raises(sandbox.ProtocolError, match="malformed array"):
        sandbox.recv_data(read_fd)
    os.close(read_fd)
    assert not marker.exists()


def test_an_oversized_answer_header_is_refused():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, struct.pack("<I", sandbox.MAX_HEADER + 1))
    os.close(write_fd)
    with pytest.raises(sandbox.ProtocolError, match="header"):
        sandbox.recv_data(read_fd)
    os.close(read_fd)


def test_reference_answers_bind_the_names_tests_may_use():
    assert autograde._defined_names("import numpy as np\ndef f(x):\n    y = 1\nclass C: pass\n"
                                    "a, (b, c) = 1, (2, 3)\n") == {"f", "C", "a", "b", "c"}


def test_the_command_explains_itself():
    done = subprocess.run([str(AECOURSE), "grade", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--student", "--jobs", "--timeout", "--memory", "--cpu", "--db-url",
                   "--course-dir"):
        assert option in done.stdout


# ---------------------------------------------------------------- the real course material
@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "solutions" / "ps1" / "ps1.ipynb").is_file(),
                    reason="solutions/ps1 not written yet")
def test_ps1_solution_earns_every_point_and_a_blank_copy_none(tmp_path):
    source = REPO / "solutions" / "ps1" / "ps1.ipynb"
    course = corpus.make_course(tmp_path / "course", source=source, timeout=120)
    release = nbformat.read(course / "exercises" / "ps1" / "ps1.ipynb", as_version=4)
    for student, notebook in [("solution", corpus.fill(release, corpus.honest_answers(source))),
                              ("blank", release)]:
        folder = course / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / "ps1.ipynb")
    done = subprocess.run([str(AECOURSE), "grade", "ps1", "--jobs", "2", "--timeout", "300"],
                          cwd=course, capture_output=True, text=True,
                          env={**os.environ, "TQDM_DISABLE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    scores, _ = gradebook_scores(f"sqlite:///{course / 'gradebook.db'}", "ps1")
    full = sum(float(corpus.meta(c)["points"]) for c in nbformat.read(source, 4).cells
               if corpus.meta(c).get("grade") and c.cell_type == "code")
    assert auto_points(scores["solution"]) == full, done.stdout
    assert auto_points(scores["blank"]) == 0
