"""The grader's worker and session (a real forked worker, without namespaces): the delegation
guard asks the grader, the audit hook refuses what would undo it, deadlines cover every
request and callback of a cell, a crashed worker is restarted and its cells replayed."""

from __future__ import annotations

import time

import numpy as np
import pytest

import aecourse.gradcheck  # noqa: F401  (imported here, not inside a timed cell)
from aecourse import grading
from aecourse.grader import inplace
from aecourse.grader.isolation import Limits
from aecourse.grader.process import Spawn, spawn
from aecourse.grader.protocol import ProtocolError, encode
from aecourse.grader.session import Remote, Session, StudentError, WorkerDied


@pytest.fixture
def session(tmp_path):
    limits = Limits(timeout=3, submission=60, memory=2048, restarts=2)
    spec = Spawn(None, [], tmp_path / "work", None, limits)
    session = Session(spec, spawn(spec), guarded=["gradcheck.rel_error"],
                      deadline=time.monotonic() + 60)
    session.start()
    session.begin_cell()
    yield session
    session.close()


def run(session, code):
    session.begin_cell()
    return session.execute(code, "cell")


def test_a_disabled_library_function_raises_in_the_worker_only_while_the_grader_says_so(session):
    assert run(session, "from aecourse.gradcheck import rel_error as library\n"
                        "from aecourse import grading\n"
                        "grading.disabled = lambda *a, **k: __import__('contextlib')"
                        ".nullcontext()\n"
                        "def mine(a, b):\n    return library(a, b)\n") is None
    mine = Remote(session, ("global", "mine"))
    assert mine(1.0, 1.0) == 0.0
    with grading.disabled("gradcheck.rel_error", graded="mine"):
        with pytest.raises(StudentError, match="DelegationError.*while your mine is graded"):
            mine(1.0, 1.0)
    assert mine(1.0, 3.0) == 0.5


@pytest.mark.parametrize("code, refused", [
    ("import aecourse.gradcheck as g\ng.rel_error.__code__ = (lambda a, b: 0.0).__code__",
     "__code__"),
    ("import gc\ngc.get_referrers(object())", "gc.get_referrers"),
    ("import gc\ngc.get_objects()", "gc.get_objects"),
    ("import ctypes\nctypes.CDLL(None)", "ctypes"),
    ("import importlib, aecourse.gradcheck as g\nimportlib.reload(g)", "graded library module"),
    ("import sys\ndel sys.modules['aecourse.gradcheck']\nimport aecourse.gradcheck", "import"),
])
def test_the_audit_hook_refuses_what_would_undo_the_guard(session, code, refused):
    error = run(session, code)
    assert error is not None and refused in error


def test_a_cell_deadline_covers_many_small_requests(session):
    run(session, "import time\nclass Slow:\n    @property\n    def x(self):\n"
                 "        time.sleep(0.4)\n        return 1\ndef make():\n    return Slow()\n")
    session.begin_cell()
    slow = Remote(session, ("global", "make"))()
    started = time.monotonic()
    with pytest.raises(WorkerDied, match="stopped after 3 s"):
        while slow.x:
            pass
    assert time.monotonic() - started < 4


def test_a_callback_that_never_ends_stops_at_the_cell_deadline(session):
    run(session, "def apply(fn):\n    return fn(1)\n")

    def forever(x):
        while True:
            time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(WorkerDied, match="stopped after"):
        Remote(session, ("global", "apply"))(forever)
    assert time.monotonic() - started < 4


def test_a_crashed_worker_is_restarted_with_its_cells_replayed(session):
    run(session, "offset = 41\ndef add(x):\n    return x + offset\n"
                 "def die():\n    import os\n    os._exit(3)\n")
    with pytest.raises(WorkerDied, match="exit status 3"):
        Remote(session, ("global", "die"))()
    session.begin_cell()
    assert Remote(session, ("global", "add"))(1) == 42
    assert session.restarts == 1


def test_replaced_student_names_are_sent_as_callbacks(session):
    run(session, "def helper(x):\n    return -1\ndef uses(x):\n    return helper(x) * 10\n")
    namespace = {}
    session.namespace, session.student_names = namespace, {"helper", "uses"}
    uses = Remote(session, ("global", "uses"))
    assert uses(1) == -10
    with grading.replaced(namespace, helper=lambda x: x + 1, expected=123):
        assert uses(1) == 20
    assert uses(1) == -10
    assert run(session, "assert 'expected' not in globals()") is None


def test_grading_says_what_is_disabled_and_replaced_right_now():
    namespace = {"f": 1}
    assert grading.active_disabled() == {} and grading.active_replacements(namespace) == {}
    with grading.disabled("gradcheck.rel_error", graded="outer"):
        with grading.disabled("gradcheck.rel_error", graded="inner"), \
                grading.replaced(namespace, f=2, g=3):
            assert "inner" in grading.active_disabled()["aecourse.gradcheck.rel_error"]
            assert grading.active_replacements(namespace) == {"f": 2, "g": 3}
            assert grading.active_replacements({}) == {}
        assert "outer" in grading.active_disabled()["aecourse.gradcheck.rel_error"]
        assert grading.active_replacements(namespace) == {}
    assert grading.active_disabled() == {} and namespace == {"f": 1}


def test_a_students_builtin_exception_can_be_caught_by_its_type(session):
    run(session, "def check(n):\n    if n < 1:\n        raise ValueError('n must be >= 1')\n"
                 "    return n\n")
    with pytest.raises(ValueError, match="n must be >= 1"):
        Remote(session, ("global", "check"))(0)


def test_a_name_a_test_deletes_is_hidden_from_the_students_code(session):
    run(session, "def helper():\n    return 1\ndef uses():\n    return helper()\n")
    namespace = {"helper": Remote(session, ("global", "helper"))}
    session.namespace, session.bound = namespace, dict(namespace)
    uses = Remote(session, ("global", "uses"))
    del namespace["helper"]
    with pytest.raises(NameError):
        uses()
    namespace["helper"] = session.bound["helper"]
    assert uses() == 1


def test_arrays_a_call_changes_in_place_change_the_tests_own_arrays(session):
    run(session, "def corrupt(X, level=0.0, *, out=None):\n    X[0] = -1.0\n"
                 "    if out is not None:\n        out += 1\n    return X.sum()\n"
                 "def fails(X):\n    X[:] = 7\n    raise ValueError('after the change')\n"
                 "def reshapes(X):\n    X.shape = (X.size,)\n")
    X, out, untouched = np.zeros((2, 3)), np.zeros(2, np.float32), np.ones(3)
    assert Remote(session, ("global", "corrupt"))(X, untouched, out=out) == -3.0
    assert X.tolist() == [[-1.0] * 3, [0.0] * 3] and out.tolist() == [1.0, 1.0]
    assert untouched.tolist() == [1.0] * 3
    with pytest.raises(ValueError, match="after the change"):    # changed, then raised
        Remote(session, ("global", "fails"))(X)
    assert (X == 7).all()
    Remote(session, ("global", "reshapes"))(X)                   # not copied: a note
    assert X.shape == (2, 3) and session.notes == [inplace.NOT_COPIED]


def test_a_lying_worker_cannot_write_into_what_the_test_did_not_pass():
    X = np.zeros(2)

    def back(place, value):
        payloads: list = []
        tree = encode(value, payloads, None)
        return inplace.copy_back({"args": (X,), "kwargs": {}}, [[place, tree]], payloads, None)

    assert back(["a", 0], np.ones(2)) == [] and X.tolist() == [1, 1]
    for place in (["a", 1], ["k", "other"], ["a", "x"], "ab"):
        with pytest.raises(ProtocolError):
            back(place, np.ones(2))
    assert back(["a", 0], np.ones(3)) == back(["a", 0], np.ones(2, np.int64)) == \
        [inplace.NOT_COPIED]
    assert back(["a", 0], [1.0, 2.0]) == [inplace.NOT_COPIED] and X.tolist() == [1, 1]
