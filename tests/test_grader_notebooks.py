"""The grader's cell model: reading any submitted notebook without an exception, the names a
source binds, the guarded library functions, tampering indicators, the autograded notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aecourse.grader import flags, notebooks

HW = Path(__file__).resolve().parent / "hostile" / "hw.ipynb"


def source():
    return json.loads(HW.read_text())


def cells():
    return notebooks.source_cells(source())


def submit(edit) -> notebooks.Submission:
    nb = source()
    edit(nb)
    return notebooks.read_submission(json.dumps(nb).encode(), "hw.ipynb", cells())


def test_the_source_cells_have_their_kinds_and_points():
    kinds = {c.grade_id: (c.kind, c.points) for c in cells() if c.grade_id}
    assert kinds == {"setup": ("setup", 0.0), "mean_rows": ("answer", 0.0),
                     "test_mean_rows": ("test", 2.0), "rel_error": ("answer", 0.0),
                     "test_rel_error": ("test", 3.0), "apply_rows": ("answer", 0.0),
                     "test_apply_rows": ("test", 1.0), "written_mean": ("written", 2.0)}


def test_an_unchanged_notebook_gives_every_answer_and_no_note():
    result = submit(lambda nb: None)
    assert result.fatal is None and result.notes == [] and result.extra == {}
    assert set(result.answers) == {"mean_rows", "rel_error", "apply_rows", "written_mean"}


@pytest.mark.parametrize("edit, note", [
    (lambda nb: nb["cells"][2]["metadata"].update(nbgrader="a string"), "wrong type"),
    (lambda nb: nb["cells"][2]["metadata"].update(nbgrader={"grade_id": ["list"]}), "list"),
    (lambda nb: nb["cells"][2].update(metadata=[1, 2]), "wrong type"),
    (lambda nb: nb["cells"][2].update(source=[1, 2]), "not text"),
    (lambda nb: nb["cells"][2].update(source={"a": 1}), "not text"),
    (lambda nb: nb["cells"].insert(0, "not a cell"), "not a JSON object"),
    (lambda nb: nb["cells"].insert(0, None), "not a JSON object"),
])
def test_metadata_and_sources_of_any_type_become_notes(edit, note):
    result = submit(edit)
    assert result.fatal is None
    assert any(note in n for n in result.notes), result.notes


def test_sources_as_lists_and_any_unicode_are_read():
    def edit(nb):
        nb["cells"][2]["source"] = ["def mean_rows(X):\n", "    return '\ud800\U0001F600'\n"]
    result = submit(edit)
    assert result.answers["mean_rows"].endswith("'\ud800\U0001F600'\n")
    assert notebooks.clean(result.answers["mean_rows"]).count("\ufffd") == 1


@pytest.mark.parametrize("data", [b"{\"cells\": [ oops", b"[]", b"{\"cells\": 3}", b"\xff\xfe",
                                  b"{\"cells\": {}}", b"9" * 100])
def test_unreadable_notebooks_are_fatal_with_a_reason(data):
    result = notebooks.read_submission(data, "hw.ipynb", cells())
    assert "not a valid notebook" in result.fatal


def test_a_missing_notebook_is_fatal():
    assert "missing" in notebooks.read_submission(None, "hw.ipynb", cells()).fatal


def test_added_code_cells_run_after_the_cell_before_them():
    def edit(nb):
        nb["cells"].insert(3, {"cell_type": "code", "metadata": {}, "source": "helper = 1",
                               "outputs": [], "execution_count": None})
    assert submit(edit).extra == {"mean_rows": ["helper = 1"]}


def test_bound_names_are_the_top_level_bindings_of_the_source():
    code = ("import numpy as np\nimport os.path\nfrom math import pi as PI, tau\n"
            "def f(x):\n    y = 1\nclass C: pass\na, (b, c) = 1, (2, 3)\nd: int = 4\n"
            "e += 1\nfor i, j in []: k = 1\nwith open('x') as (fh):\n    m = 1\n"
            "if True:\n    n = 1\nelse:\n    o = 1\ntry:\n    p = 1\nexcept Exception:\n"
            "    q = 1\nlambda: (z := 1)\n")
    assert notebooks.bound_names(code) == {"np", "os", "PI", "tau", "f", "C", "a", "b", "c",
                                           "d", "e", "i", "j", "k", "fh", "m", "n", "o", "p",
                                           "q"}
    assert notebooks.bound_names("def broken(:\n") == set()


def test_guarded_names_come_from_disabled_calls_in_the_tests():
    tests = [c.source for c in cells() if c.kind == "test"]
    assert notebooks.guarded_names(tests) == ["gradcheck.rel_error"]
    assert notebooks.guarded_names(["with disabled('a.b', 'c', graded=x): pass",
                                    "grading.disabled(name)"]) == ["a.b", "c"]


@pytest.mark.parametrize("code", [
    "f.__code__ = g.__code__", "import ctypes", "import gc\ngc.get_objects()",
    "import sys\nsys.modules['x'] = 1", "import importlib\nimportlib.reload(m)",
    "import sys\nsys.settrace(None)", "import builtins\nbuiltins.len = 1",
    "x = f.__closure__[0].cell_contents", "c = f.__code__.co_consts",
    "__builtins__['print'] = None", "import sys\nsys._getframe(1).f_globals",
])
def test_tampering_is_recognised_in_the_source(code):
    assert flags.tamper_indicators(code)


def test_ordinary_code_is_not_tampering():
    assert flags.tamper_indicators("import numpy as np\ndef f(X):\n    return X.sum()\n"
                                       "torch.manual_seed(0)\n") == []


def test_the_autograded_notebook_escapes_written_answers_and_never_shows_the_solution():
    nb, release = source(), source()
    release["cells"][4]["source"] = "# YOUR CODE HERE\nraise NotImplementedError()"
    text = notebooks.autograded_notebook(
        nb, release, {"written_mean": "<img src=x onerror=alert(1)> & \ud800"},
        {"test_mean_rows": "AssertionError: no"})
    out = json.loads(text)
    written = next(c for c in out["cells"] if c["metadata"].get("nbgrader", {})
                   .get("grade_id") == "written_mean")
    assert written["source"] == "&lt;img src=x onerror=alert(1)&gt; &amp; \ufffd"
    answer = next(c for c in out["cells"] if c["metadata"].get("nbgrader", {})
                  .get("grade_id") == "rel_error")
    assert answer["source"] == "# YOUR CODE HERE\nraise NotImplementedError()"  # not deleted
    test = next(c for c in out["cells"] if c["metadata"].get("nbgrader", {})
                .get("grade_id") == "test_mean_rows")
    assert test["outputs"][0]["evalue"] == "AssertionError: no"
