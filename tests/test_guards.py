"""Guards an instructor needs before and after grading a class: ``solutions/`` is what was
released, the reference solution earns every autograded point, no stored score exceeds its
cell's maximum, a regrade keeps the manual grades of unchanged answers (and drops stale
feedback), and feedback pages show each hidden test's result and message, not its source."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from aecourse.grader import course as grade_command
from aecourse.grader import gradebook, late, notebooks, preflight
from aecourse.grader.feedback import HIDDEN_NOTE, AecourseFeedback, without_installed_frames
from aecourse.grader.run import CellResult, NotebookResult, SubmissionResult

sys.path.insert(0, str(Path(__file__).parent))
from assignments.harness import AECOURSE, REPO, nbgrader  # noqa: E402
from test_term import cell  # noqa: E402  (an nbgrader code cell)

SOLUTION = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION"
HIDDEN = "assert add(-7, 3) == -4, 'add(-7, 3) should be -4'"   # a hidden test: never shown
CELLS = [  # (source, grade_id, nbgrader metadata)
    (SOLUTION, "add", {"solution": True}),
    ("assert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\n" + HIDDEN + "\n### END HIDDEN TESTS",
     "test_a", {"points": 2}),
    ("### BEGIN HIDDEN TESTS\nassert add(0, 0) == 0\n### END HIDDEN TESTS", "test_b",
     {"points": 1}),
    ("assert isinstance(add(1, 1), int)", "test_c", {"points": 1}),
]
WRITTEN = "Explain `add`.\n\n### BEGIN SOLUTION\nThe sum.\n### END SOLUTION"


def source_notebook(cells=CELLS):
    nb = nbformat.v4.new_notebook(cells=[cell(s, g, **o) for s, g, o in cells])
    written = nbformat.v4.new_markdown_cell(WRITTEN)
    written.metadata["nbgrader"] = {"grade_id": "explain", "solution": True, "grade": True,
                                    "locked": False, "points": 2, "schema_version": 3}
    nb.cells.append(written)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A course with the repository's config and one assignment ``tiny``, released."""
    course = tmp_path_factory.mktemp("guards") / "course"
    (course / "solutions" / "tiny").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    nbformat.write(source_notebook(), course / "solutions" / "tiny" / "tiny.ipynb")
    nbgrader("generate_assignment", "tiny", "--create", f"--CourseDirectory.root={course}",
             cwd=course)
    return course


@pytest.fixture
def course(released, tmp_path):
    return Path(shutil.copytree(released, tmp_path / "course"))


def edit_source(course, edit):
    path = course / "solutions" / "tiny" / "tiny.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit(nb.cells, {c.metadata.nbgrader["grade_id"]: c for c in nb.cells})
    nbformat.write(nb, path)


def submit(course, student, add="def add(a, b):\n    return a + b", explain="The sum of both."):
    nb = nbformat.read(course / "exercises" / "tiny" / "tiny.ipynb", as_version=4)
    nb.cells[0].source, nb.cells[-1].source = add, explain
    folder = course / "submitted" / student / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "tiny.ipynb")


def grade(course, *args):
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(AECOURSE), "grade", "tiny", "--jobs", "1", *args], cwd=course,
                          env=env, capture_output=True, text=True, timeout=600)


def scores(course, student):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook("tiny", "tiny", student)
        return {g.name: (g.score, g.max_score, g.needs_manual_grade) for g in notebook.grades}


def students(course):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return sorted(s.id for s in gb.students)


# ---------------------------------------------------------------- a. the source is the release
def changes_now(course):
    config = grade_command.load_config(course)
    return preflight.source_changes(
        preflight.released_cells(config["db_url"], config["course_id"], "tiny"),
        preflight.current_cells(course / "solutions" / "tiny", late.course_config(course)))


def test_an_unchanged_source_has_no_changes_whatever_its_solutions_say(course):
    assert changes_now(course) == []
    # the solution is not released: changing it changes nothing students were given
    edit_source(course, lambda cells, by_id: setattr(by_id["add"], "source",
                                                     SOLUTION.replace("a + b", "b + a")))
    assert changes_now(course) == []


def test_each_change_since_release_is_named_by_cell_and_kind(course):
    def edit(cells, by_id):
        by_id["test_a"].source = by_id["test_a"].source.replace("== -4", "== -5")
        by_id["test_a"].metadata.nbgrader["points"] = 3
        cells.remove(by_id["test_c"])
        cells.insert(1, cell("assert add(2, 2) == 4", "test_d", points=1))
        test_b = by_id["test_b"]                  # same source, a Markdown cell now: its kind
        cells[cells.index(test_b)] = nbformat.v4.new_markdown_cell(test_b.source,
                                                                  metadata=test_b.metadata)

    edit_source(course, edit)
    found = {(c.cell, c.what): c.detail for c in changes_now(course)}
    assert set(found) == {("test_a", "source"), ("test_a", "points"), ("test_c", "removed"),
                          ("test_d", "added"), ("test_b", "kind")}
    assert found["test_a", "points"] == "released 2 points, now 3 points"
    assert "-assert add(-7, 3) == -4" in found["test_a", "source"]
    assert "+assert add(-7, 3) == -5" in found["test_a", "source"]


def test_grading_stops_on_a_changed_source_and_says_what_changed(course):
    submit(course, "alice")
    edit_source(course, lambda cells, by_id: by_id["test_b"].metadata.nbgrader.update(points=3))
    done = grade(course)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "tiny.ipynb, cell 'test_b': points (released 1 point, now 3 points)" in done.stderr
    assert "--allow-changed-source" in done.stderr
    assert students(course) == []                       # nobody was graded


def test_a_change_recorded_with_aecourse_release_is_graded(course):
    edit_source(course, lambda cells, by_id: by_id["test_b"].metadata.nbgrader.update(points=3))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(AECOURSE), "release", "tiny"], cwd=course, env=env, check=True,
                   capture_output=True, timeout=300)
    assert changes_now(course) == []
    config = grade_command.load_config(course)
    released = preflight.released_cells(config["db_url"], config["course_id"], "tiny")
    assert released["tiny"]["test_b"][2] == 3.0


# ------------------------------------------- b, c. the reference earns everything; capped scores
def test_allowed_changed_source_scores_out_of_the_released_points_never_above(course):
    """Points raised 1 -> 3 and a test added after release: the released maximum holds, the new
    cell is not stored, every student is graded; the reference solution passes, unwritten."""
    submit(course, "alice")
    submit(course, "bob", add="def add(a, b):\n    return float(a + b)")

    def edit(cells, by_id):
        by_id["test_b"].metadata.nbgrader["points"] = 3
        cells.insert(2, cell("assert add(2, 2) == 4", "test_d", points=1))

    edit_source(course, edit)
    done = grade(course, "--allow-changed-source")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cell 'test_d': added" in done.stderr
    assert students(course) == ["alice", "bob"]          # no reference-solution student
    alice, bob = scores(course, "alice"), scores(course, "bob")
    assert {k: v[:2] for k, v in alice.items()} == {
        "test_a": (2.0, 2.0), "test_b": (1.0, 1.0), "test_c": (1.0, 1.0), "explain": (0.0, 2.0)}
    assert {k: v[:2] for k, v in bob.items() if k.startswith("test")} == {
        "test_a": (2.0, 2.0), "test_b": (1.0, 1.0), "test_c": (0.0, 1.0)}
    assert "scored out of the 1 points released (solutions/ says 3)" in done.stdout
    assert "'test_d' is not in the release" in done.stdout


def test_grading_stops_when_the_reference_solution_fails_a_test(course):
    """A wrong solution is not a change students were given: the reference check catches it."""
    edit_source(course, lambda cells, by_id: setattr(
        by_id["add"], "source", SOLUTION.replace("a + b", "abs(a) + b")))
    submit(course, "alice")
    done = grade(course)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "does not earn every autograded point" in done.stderr
    assert "tiny/test_a (0 of 2 points): AssertionError: add(-7, 3) should be -4" in done.stderr
    assert students(course) == []
    skipped = grade(course, "--skip-solution-check")
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert students(course) == ["alice"]


def test_the_guides_grade_synopsis_is_the_commands_options():
    import re
    guide = (REPO / "book" / "instructors.md").read_text()
    synopsis = re.search(r"`(aecourse grade ps1 \[[^`]*)`", guide).group(1)
    documented = set(re.findall(r"(--[a-z-]+)", synopsis))
    options = {o for a in grade_command._parser()._actions for o in a.option_strings
               if o.startswith("--") and o != "--help"}
    assert documented == options


def test_a_stored_score_never_exceeds_the_released_maximum():
    notes = []
    for points, max_points, passed, expected in [(5.0, 3.0, True, 1.0), (3.0, 3.0, True, 1.0),
                                                 (0.0, 3.0, False, 0.0),
                                                 (float("nan"), 3.0, False, 0.0),
                                                 (0.0, 0.0, True, 1.0), (1.5, 3.0, False, 0.5)]:
        result = CellResult("t", "test", points, max_points, passed)
        assert gradebook._score(result, 1.0, notes, "t") == expected, (points, max_points)
    assert gradebook._score(None, 1.0, notes, "t") == 0.0


# ------------------------------------------------------------------------- d. regrades
def write(course, student, explain, *, add="def add(a, b):\n    return a + b"):
    """Write a passing result with this written answer through the single writer."""
    config = grade_command.load_config(course)
    config.update(source=str(course / "solutions" / "tiny"),
                  release=str(course / "exercises" / "tiny"), nbgrader=late.course_config(course))
    source = json.loads((course / "solutions" / "tiny" / "tiny.ipynb").read_text())
    release = json.loads((course / "exercises" / "tiny" / "tiny.ipynb").read_text())
    answers = {"add": add, "explain": explain}
    cells = [CellResult(g, "test", o["points"], o["points"], True) for _, g, o in CELLS[1:]]
    result = SubmissionResult(student, "tiny", [NotebookResult(
        "tiny", [*cells, CellResult("explain", "written", max_points=2)], answers,
        autograded=notebooks.autograded_notebook(source, release, answers, {}))])
    (course / "submitted" / student / "tiny").mkdir(parents=True, exist_ok=True)
    return gradebook.write_result(result, config)


def test_a_regrade_keeps_manual_grades_of_unchanged_answers_and_drops_stale_feedback(course):
    write(course, "alice", "Alice: the sum.")
    write(course, "bob", "Bob: the sum.")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student, points in (("alice", 2.0), ("bob", 1.0)):
            grade = gb.find_grade("explain", "tiny", "tiny", student)
            grade.manual_score, grade.needs_manual_grade = points, False
        gb.find_grade("test_c", "tiny", "tiny", "alice").manual_score = 0.5   # an override
        gb.db.commit()
    nbgrader("generate_feedback", "tiny", f"--CourseDirectory.root={course}", cwd=course)
    assert (course / "feedback" / "alice" / "tiny" / "tiny.html").is_file()

    write(course, "alice", "Alice: the sum.")                # unchanged
    write(course, "bob", "Bob: the sum of a and b.")         # changed: review it
    assert scores(course, "alice")["explain"] == (2.0, 2.0, False)
    assert scores(course, "alice")["test_c"] == (0.5, 1.0, False)
    assert scores(course, "bob")["explain"] == (1.0, 2.0, True)
    write(course, "alice", "Alice: the sum.", add="def add(a, b):\n    return b + a")
    assert scores(course, "alice")["explain"] == (2.0, 2.0, False)
    assert scores(course, "alice")["test_c"] == (0.5, 1.0, True)   # its code changed
    # stale pages are gone, and plain generate_feedback (no --force) writes new ones
    assert not (course / "feedback" / "alice" / "tiny").exists()
    nbgrader("generate_feedback", "tiny", f"--CourseDirectory.root={course}", cwd=course)
    assert "the sum of a and b" in (course / "feedback" / "bob" / "tiny" / "tiny.html").read_text()


# ------------------------------------------------------------------------- e. feedback pages
def test_feedback_shows_hidden_tests_results_and_messages_but_not_their_source(course):
    write(course, "alice", "The sum.")
    autograded = course / "autograded" / "alice" / "tiny" / "tiny.ipynb"
    nb = json.loads(autograded.read_text())
    nb["cells"][1]["outputs"] = [{"output_type": "error", "ename": "AssertionError",
                                  "evalue": "add(-7, 3) should be -4",
                                  "traceback": ["----> 3 " + HIDDEN, "AssertionError: ..."]}]
    autograded.write_text(json.dumps(nb))
    nbgrader("generate_feedback", "tiny", "--force", f"--CourseDirectory.root={course}",
             cwd=course)
    page = (course / "feedback" / "alice" / "tiny" / "tiny.html").read_text()
    assert "add(-7, 3) should be -4" in page                      # the result and message
    assert "assert add(-7, 3)" not in page and "add(0, 0)" not in page
    assert "isinstance" in page and "hidden tests: their result is below" in page
    assert HIDDEN in autograded.read_text()                       # Formgrader still sees it


def test_feedback_preprocessor_keeps_visible_tests_and_can_show_everything():
    from traitlets.config import Config
    nb = source_notebook()
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="AssertionError",
                                                  evalue="no", traceback=[HIDDEN])]
    hidden, _ = AecourseFeedback().preprocess(nbformat.from_dict(nb), {})
    assert hidden.cells[1].source == "assert add(1, 2) == 3\n" + HIDDEN_NOTE
    assert hidden.cells[2].source == HIDDEN_NOTE
    assert hidden.cells[1].outputs[0].traceback == ["AssertionError: no"]
    message = ["AssertionError: expected 3", "got 4"]          # aecourse grade's: kept whole
    nb.cells[2].outputs = [nbformat.v4.new_output("error", ename="GradingFailure",
                                                  evalue=message[0], traceback=message)]
    assert AecourseFeedback().preprocess(nbformat.from_dict(nb), {})[0].cells[2].outputs[0] \
        .traceback == message
    assert hidden.cells[0].source == SOLUTION                     # not a test cell
    config = Config()
    config.AecourseFeedback.show_test_source = True
    shown, _ = AecourseFeedback(config=config).preprocess(nbformat.from_dict(nb), {})
    assert shown.cells[1].source == CELLS[1][0] and shown.cells[1].outputs[0].traceback == [HIDDEN]


def test_feedback_tracebacks_keep_the_students_frames_but_not_the_graders_paths():
    lines = ["AssertionError: your add failed", "Traceback (most recent call last):",
             '  File "/opt/venv/site-packages/aecourse/grader/worker.py", line 120, in handle',
             "    value = function(*args)", '  File "<add>", line 2, in add',
             "    return a - b", "ValueError: no"]
    assert without_installed_frames(lines) == [
        "AssertionError: your add failed", "Traceback (most recent call last):",
        '  File "<add>", line 2, in add', "    return a - b", "ValueError: no"]
