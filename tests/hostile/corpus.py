"""Hostile submissions to ``tests/hostile/hw.ipynb``, and a throw-away course to grade them in.

``hw`` has three graded functions: ``mean_rows`` (test worth 2 points), ``rel_error`` (3 points,
its hidden test disables ``aecourse.gradcheck.rel_error``) and ``apply_rows`` (1 point, the test
passes functions defined in the test cell), plus a written answer (2 points, graded by hand).
An honest student earns 6 automatic points.

Each case below is one student: ``build(release, answers, course)`` returns the submitted file's
text (``None``: no notebook submitted), and ``points`` is what ``aecourse grade`` must award.
Optional keys: ``folder(folder, course)`` adds files to the submission folder (links ...),
``timestamp`` replaces the text of ``timestamp.txt``, ``note=True``: the grader must report an
oddity of this submission (CSV ``notes`` column), ``tamper``: whether the submission must
(True) or must not (False) be flagged for tampering (absent: either).
The expected points are reasoned from the case (which functions are wrong, which cells die), never
copied from a run: every function of ``hw`` that a case does not touch is the reference answer.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "hw.ipynb"
NBGRADER = Path(sys.executable).with_name("nbgrader")
_SOLUTION = re.compile(r"[ \t]*### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION\n?", re.S)

CONFIG = """c = get_config()
c.CourseDirectory.course_id = "hostile"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = {db_url!r}
c.ExecutePreprocessor.timeout = {timeout}
c.Execute.timeout = {timeout}
"""


def meta(cell) -> dict:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def make_course(root: Path, *, db_url: str | None = None, timeout: int = 10,
                source: Path = SOURCE) -> Path:
    """A course directory with ``solutions/<name>`` (default: hw) released by nbgrader, which
    also registers the assignment in the gradebook."""
    root.mkdir(parents=True, exist_ok=True)
    db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    (root / "nbgrader_config.py").write_text(CONFIG.format(db_url=db_url, timeout=timeout))
    (root / "solutions" / source.stem).mkdir(parents=True, exist_ok=True)
    shutil.copy(source, root / "solutions" / source.stem / source.name)
    env_path = f"{NBGRADER.parent}:/usr/bin:/bin"
    done = subprocess.run([str(NBGRADER), "generate_assignment", source.stem, "--create",
                           "--force"], cwd=root, capture_output=True, text=True,
                          env={"PATH": env_path})
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stderr[-3000:]}")
    return root


def honest_answers(source: Path = SOURCE) -> dict:
    """grade_id -> the reference answer without the solution markers."""
    nb = nbformat.read(source, as_version=4)
    return {meta(c)["grade_id"]: _SOLUTION.sub(lambda m: m.group(1), c.source)
            for c in nb.cells if meta(c).get("solution")}


def fill(release, answers: dict):
    """The release notebook with the given answers in their cells."""
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if meta(cell).get("grade_id") in answers:
            cell.source = answers[meta(cell)["grade_id"]]
    return nb


def _with(**changes):
    """A submission: honest answers, some replaced."""
    def build(release, answers, course):
        return nbformat.writes(fill(release, {**answers, **{k: v.replace("{COURSE}", str(course))
                                                            for k, v in changes.items()}}))
    return build


def _all_wrong(tampering: str):
    """A submission: every function wrong, plus code that tries to make the tests pass anyway."""
    return _with(mean_rows=WRONG_MEAN + tampering, rel_error=WRONG_REL, apply_rows=WRONG_APPLY)


def _edit(edit):
    """A submission: honest answers, then ``edit(cells)`` changes the cell list."""
    def build(release, answers, course):
        nb = fill(release, answers)
        edit(nb.cells)
        return nbformat.writes(nb)
    return build


def _find(cells, grade_id):
    return next(i for i, c in enumerate(cells) if meta(c).get("grade_id") == grade_id)


WRONG_MEAN = "def mean_rows(X):\n    return X.sum(axis=0)\n"
WRONG_REL = "import numpy as np\ndef rel_error(a, b):\n    return 0.0\n"
WRONG_APPLY = "def apply_rows(fn, X):\n    return [0.0] * len(X)\n"


def _retype(cells):
    cell = cells[_find(cells, "rel_error")]
    cells[_find(cells, "rel_error")] = nbformat.v4.new_markdown_cell(cell.source,
                                                                    metadata=cell.metadata)


def _reorder(cells):
    cells.reverse()


CASES = {
    "honest": dict(points=6, build=_with()),
    "honest_too": dict(points=6, build=_with(apply_rows=(
        "def apply_rows(fn, X):\n    out = []\n    for row in X:\n        out.append(fn(row))\n"
        "    return np.asarray(out)\n"))),
    "blank": dict(points=0, build=lambda release, answers, course: nbformat.writes(release)),
    "infinite_loop": dict(points=3, build=_with(rel_error=(
        "def rel_error(a, b):\n    while True:\n        pass\n"))),
    "memory_bomb": dict(points=4, build=_with(mean_rows=(
        "import numpy as np\ndef mean_rows(X):\n    hog = []\n    while True:\n"
        "        hog.append(np.ones(10_000_000))\n"))),
    "kernel_exit": dict(points=3, build=_with(rel_error=(
        "import os\ndef rel_error(a, b):\n    os._exit(3)\n"))),
    "kernel_kill": dict(points=5, build=_with(apply_rows=(
        "import os, signal\ndef apply_rows(fn, X):\n    os.kill(os.getpid(), signal.SIGKILL)\n"))),
    "output_flood": dict(points=4, build=_with(mean_rows=(
        "while True:\n    print('spam ' * 20000)\n"))),
    "invalid_json": dict(points=0, build=lambda release, answers, course: "{\"cells\": [ oops"),
    "missing_notebook": dict(points=0, build=lambda release, answers, course: None),
    "deleted_test_cell": dict(points=6, build=_edit(
        lambda cells: cells.pop(_find(cells, "test_rel_error")))),
    "deleted_answer_cell": dict(points=3, build=_edit(
        lambda cells: cells.pop(_find(cells, "rel_error")))),
    "reordered_cells": dict(points=6, build=_edit(_reorder)),
    "cell_type_changed": dict(points=3, build=_edit(_retype)),
    "test_edited_to_pass": dict(points=3, build=lambda release, answers, course: _test_pass(
        release, answers)),
    "redefines_helpers": dict(points=0, build=_all_wrong(
        "import builtins\nimport numpy as np\nfrom aecourse import grading\n"
        "grading.assert_close = lambda *args, **kwargs: None\n"
        "grading.assert_true = lambda *args, **kwargs: None\n"
        "np.allclose = lambda *args, **kwargs: True\n"
        "builtins.AssertionError = type('Quiet', (Exception,), {})\n")),
    "hooks_later_cells": dict(points=0, build=_all_wrong(
        "import sys\ntry:\n    get_ipython().input_transformers_cleanup"
        ".append(lambda lines: ['pass\\n'])\nexcept NameError:\n    pass\n"
        "sys.settrace(lambda *args: None)\n")),
    "hides_tracebacks": dict(points=0, build=_all_wrong(
        "import sys, traceback\ntry:\n    ip = get_ipython()\n"
        "    ip.showtraceback = lambda *args, **kwargs: None\n"
        "    ip._showtraceback = lambda *args, **kwargs: None\nexcept NameError:\n    pass\n"
        "sys.excepthook = lambda *args: None\ntraceback.print_exc = lambda *args, **kwargs: None\n")),
    "reads_solutions": dict(points=3, build=_with(rel_error=(
        "import json\nimport numpy as np\ndef rel_error(a, b):\n    try:\n"
        "        nb = json.load(open('{COURSE}/solutions/hw/hw.ipynb'))\n"
        "        open('{COURSE}/gradebook.db', 'rb').read(16)\n"
        "    except OSError:\n        return -1.0\n"
        "    code = [''.join(c['source']) for c in nb['cells'] if 'rel_error' in "
        "''.join(c['source'])][0]\n"
        "    namespace = {'np': np}\n    exec(code, namespace)\n"
        "    return namespace['rel_error'](a, b)\n"))),
    "writes_outside": dict(points=6, build=_with(apply_rows=(
        "import os, pathlib\nfor target in ['{COURSE}/gradebook.db', "
        "'{COURSE}/submitted/honest/hw/hw.ipynb', '{COURSE}/solutions/hw/hw.ipynb']:\n"
        "    try:\n        os.remove(target)\n    except OSError:\n        pass\n"
        "for target in ['{COURSE}/submitted/honest/hw/evil.txt', '{COURSE}/evil.txt',\n"
        "               pathlib.Path(__import__('aecourse').__file__).parent / 'evil.py',\n"
        "               '{COURSE}/../evil_outside.txt']:\n"
        "    try:\n        pathlib.Path(target).write_text('pwned')\n    except OSError:\n"
        "        pass\n"
        "pathlib.Path('scratch_is_fine.txt').write_text('ok')\n"
        "def apply_rows(fn, X):\n    return np.array([fn(row) for row in X])\n"))),
    "uses_network": dict(points=6, build=_with(apply_rows=(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {PORT}), timeout=2)"
        ".sendall(b'pwned')\nexcept OSError:\n    pass\n"
        "def apply_rows(fn, X):\n    return np.array([fn(row) for row in X])\n"))),
    "fork_outlives": dict(points=6, build=_with(mean_rows=(
        "import os\nif os.fork() == 0:\n    os.setsid()\n"
        "    os.execvp('sleep', ['sleep', '987654'])\n"
        "def mean_rows(X):\n    return X.sum(axis=0) / X.shape[0]\n"))),
    "delegates": dict(points=3, build=_with(rel_error=(
        "from aecourse.gradcheck import rel_error as library_rel_error\n"
        "def rel_error(a, b):\n    return library_rel_error(a, b)\n"))),
    "returns_liar": dict(points=3, build=_with(rel_error=(
        "class Liar(float):\n    def __eq__(self, other):\n        return True\n"
        "    __le__ = __ge__ = __lt__ = __gt__ = __eq__\n"
        "    def __sub__(self, other):\n        return 0.0\n    __rsub__ = __sub__\n"
        "def rel_error(a, b):\n    return Liar(0.5)\n"))),
}


# ---------------------------------------------------------------- issue 14: one per finding
def _extra_cell(metadata: dict, source: str):
    """A submission: honest answers plus a cell the student added, with this metadata."""
    def edit(cells):
        cells.insert(2, nbformat.v4.new_code_cell(source, metadata=metadata))
    return _edit(edit)


def _raw(build, old: str, new: str):
    """A submission whose JSON text has ``old`` replaced by ``new`` (e.g. a ``\\ud800`` escape)."""
    def raw(release, answers, course):
        text = build(release, answers, course)
        assert old in text
        return text.replace(old, new)
    return raw


def _links(**links):
    """Symbolic links in the submission folder: name -> target (``{COURSE}``: the course)."""
    def folder(path, course):
        for name, target in links.items():
            (path / name).symlink_to(target.replace("{COURSE}", str(course)))
    return folder


HONEST_MEAN = "def mean_rows(X):\n    return X.sum(axis=0) / X.shape[0]\n"
LINKS = {"solution.ipynb": "{COURSE}/solutions/hw/hw.ipynb", "gradebook.db": "{COURSE}/gradebook.db",
         "classmate.ipynb": "{COURSE}/submitted/honest/hw/hw.ipynb", "shadow": "/etc/shadow"}
# mean_rows is right only if no link gave the student a single byte, relative or absolute.
READS_LINKS = (
    "import os\nLINKS = " + repr(sorted(LINKS)) + "\n"
    "def leaked():\n    found = []\n"
    "    for name in LINKS:\n"
    "        for path in (name, '{COURSE}/submitted/reads_links/hw/' + name):\n"
    "            try:\n                with open(path, 'rb') as handle:\n"
    "                    if handle.read(1):\n                        found.append(path)\n"
    "            except OSError:\n                pass\n"
    "    return found\n"
    "AT_IMPORT = leaked()\n"
    "def mean_rows(X):\n    if AT_IMPORT or leaked():\n        return X.sum(axis=0)\n"
    "    return X.sum(axis=0) / X.shape[0]\n")
# Every request the grader makes about this object takes 3 s (under --timeout 5), forever.
SLOW_OBJECT = (
    "import time\nclass Slow:\n"
    "    def __getattr__(self, name):\n        time.sleep(3)\n        return self\n"
    "    def __call__(self, *args, **kwargs):\n        time.sleep(3)\n        return self\n"
    "    def __len__(self):\n        time.sleep(3)\n        return 1_000_000\n"
    "    def __getitem__(self, index):\n        time.sleep(3)\n        return self\n"
    "    def __iter__(self):\n        return self\n"
    "    def __next__(self):\n        time.sleep(3)\n        return self\n"
    "    def __float__(self):\n        time.sleep(3)\n        return 0.5\n"
    "def rel_error(a, b):\n    return Slow()\n")
DELEGATE = ("from aecourse.gradcheck import rel_error as library_rel_error\n"
            "def rel_error(a, b):\n    return library_rel_error(a, b)\n")

CASES.update({
    # --- one submission must never crash the batch (each: honest answers, then the oddity)
    "metadata_string": dict(points=6, note=True, tamper=False, build=_extra_cell(
        {"nbgrader": "not a dict"}, "note = 'an extra cell'\n")),
    "grade_id_list": dict(points=6, note=True, tamper=False, build=_extra_cell(
        {"nbgrader": {"grade_id": ["mean_rows"], "solution": True, "grade": False,
                      "locked": False, "schema_version": 3}}, "extra = 1\n")),
    # a dict key hashable in the worker, a list when decoded: as the value of a graded name
    # (mean_rows is then not a function: 2 points lost) and of a name of the student's own
    "undescribable_global": dict(points=4, build=_with(mean_rows=(
        "class Key(list):\n    def __hash__(self):\n        return 1\n"
        "mean_rows = {Key([1, 2]): 'not a function'}\n"
        "table = {Key([3]): 'hashable here, a list when decoded'}\n"))),
    "surrogate_written": dict(points=6, tamper=False, build=_raw(_with(
        written_mean="The mean minimises the squared error. SURROGATE"),
        "SURROGATE", "\\ud800")),
    "surrogate_exception": dict(points=5, build=_with(apply_rows=(
        "print('a lone surrogate: \\udcff')\n"
        "def apply_rows(fn, X):\n    raise ValueError('row \\ud800 is bad')\n"))),
    "bad_timestamp": dict(points=6, note=True, tamper=False, timestamp="the day before the deadline",
                          build=_with()),
    "dangling_link": dict(points=6, note=True, tamper=False, build=_with(),
                          folder=_links(dangling="/nonexistent/aecourse-dangling-target")),
    # --- verdict cheats
    "reads_expected": dict(points=3, build=_with(rel_error=(      # quick check passes with 1.0;
        "expected = 1.0\ndef rel_error(a, b):\n    return expected\n"))),  # hidden ones must not
    "patches_disabled": dict(points=3, build=_with(rel_error=(
        "import contextlib\nfrom aecourse import grading\n"
        "grading.disabled = lambda *names, **kwargs: contextlib.nullcontext()\n" + DELEGATE))),
    "patches_grading_module": dict(points=3, tamper=True, build=_with(rel_error=(
        "import contextlib, sys, types\nimport aecourse\nfrom aecourse import grading\n"
        "fake = types.ModuleType('aecourse.grading')\nfake.__dict__.update(vars(grading))\n"
        "fake.disabled = lambda *names, **kwargs: contextlib.nullcontext()\n"
        "sys.modules['aecourse.grading'] = fake\naecourse.grading = fake\n" + DELEGATE))),
    "fake_grading_name": dict(points=0, build=_all_wrong(
        "import contextlib\nclass grading:\n"
        "    assert_close = staticmethod(lambda *args, **kwargs: None)\n"
        "    assert_true = staticmethod(lambda *args, **kwargs: None)\n"
        "    disabled = staticmethod(lambda *args, **kwargs: contextlib.nullcontext())\n")),
    # --- links in the submission folder are never read through
    "reads_links": dict(points=6, note=True, build=_with(mean_rows=READS_LINKS),
                        folder=_links(**LINKS)),
    # --- limits that hold (each: only its own cells fail)
    "slow_object": dict(points=3, build=_with(rel_error=SLOW_OBJECT)),
    "huge_callback_input": dict(points=5, build=_with(apply_rows=(   # 320 MB to a grader function
        "def apply_rows(fn, X):\n    fn(np.ones(40_000_000))\n"
        "    return np.array([fn(row) for row in X])\n"))),
    "callback_flood": dict(points=5, build=_with(apply_rows=(     # minutes of quick callbacks
        "def apply_rows(fn, X):\n    for _ in range(1_000_000):\n        fn(np.ones(1000))\n"
        "    return np.array([fn(row) for row in X])\n"))),
    "huge_answer": dict(points=4, build=_with(mean_rows=(     # 1.9 GB of answer, free to make
        "def mean_rows(X):\n"
        "    return tuple(np.broadcast_to(np.float64(k), (60_000_000,)) for k in range(4))\n"))),
    "mmap_bomb": dict(points=4, build=_with(mean_rows=(
        "import mmap\ndef mean_rows(X):\n    block = mmap.mmap(-1, 2_500_000_000)\n"
        "    for offset in range(0, len(block), 4096):\n        block[offset] = 1\n"
        "    return X.sum(axis=0) / X.shape[0]\n"))),
    "disk_filler": dict(points=4, build=_with(mean_rows=(            # 1 GB in 40 MB files
        "def mean_rows(X):\n    chunk = b'\\0' * 40_000_000\n    for i in range(25):\n"
        "        with open(f'filler_{i}.bin', 'wb') as handle:\n"
        "            handle.write(chunk)\n"
        "    return X.sum(axis=0) / X.shape[0]\n"))),
    "fork_bomb": dict(points=5, build=_with(apply_rows=(             # children exec `sleep`
        "import os\ndef apply_rows(fn, X):\n    for _ in range(2000):\n"
        "        if os.fork() == 0:\n            try:\n"
        "                os.execv('/bin/sleep', ['sleep', '987654'])\n"
        "            finally:\n                os._exit(0)\n"
        "    return np.array([fn(row) for row in X])\n"))),
    # --- output that would attack the reader of the report or of the feedback
    "csv_injection": dict(points=4, build=_with(mean_rows=(
        "print('\\x1b]0;terminal title\\x07\\x1b[31mred')\n"
        "Formula = type('=HYPERLINK(\"http://evil.example/\")', (Exception,), {})\n"
        "def mean_rows(X):\n    raise Formula('=1+2 \\x1b[2J\\x07\\x00 cleared')\n"))),
    "xss_written": dict(points=6, build=_with(
        written_mean='<img src=x onerror=alert("xss-img")>\n\n'
                     '<script>alert("xss-script")</script>\n\nThe mean minimises the error.',
        mean_rows=HONEST_MEAN + "try:\n    from IPython.display import HTML, display\n"
        "    display(HTML('<img src=y onerror=alert(\"xss-output\")>'))\n"
        "except Exception:\n    pass\n")),
})
for _name in ("honest", "honest_too", "blank", "reordered_cells", "deleted_test_cell"):
    CASES[_name]["tamper"] = False
for _name in ("redefines_helpers", "hooks_later_cells"):
    CASES[_name]["tamper"] = True


def _test_pass(release, answers):
    nb = fill(release, {**answers, "rel_error": WRONG_REL})
    nb.cells[_find(nb.cells, "test_rel_error")].source = "pass"
    return nbformat.writes(nb)


def submit(course: Path, cases: dict, *, port: int = 9) -> None:
    """Write ``submitted/<case>/hw/hw.ipynb`` for every case (``{PORT}``: a listening port)."""
    release = nbformat.read(course / "exercises" / "hw" / "hw.ipynb", as_version=4)
    answers = honest_answers()
    for name, case in cases.items():
        folder = course / "submitted" / name / "hw"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "timestamp.txt").write_text(case.get("timestamp",
                                                       "2026-11-20 12:00:00.000000 UTC"))
        text = case["build"](release, answers, course)
        if text is not None:
            (folder / "hw.ipynb").write_text(text.replace("{PORT}", str(port)))
        if "folder" in case:
            case["folder"](folder, course)
