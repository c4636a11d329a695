"""The nbgrader cell model: what each cell is, and reading a submitted notebook defensively.

A cell is a *test* (``grade`` code cell: run by the grader), an *answer* (``solution`` code
cell: the student's code), *written* (``solution`` Markdown cell: graded by hand), *setup*
(any other code cell: the instructor's) or *text*. A submitted notebook is read as plain JSON:
whatever type its metadata, grade ids or sources have, and whatever Unicode it holds, every
oddity becomes a note and never an exception.

Also here: the names a piece of source binds at top level, the library functions an
assignment's tests disable, and the autograded notebook.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass, field

__all__ = ["Cell", "Submission", "source_cells", "read_submission", "bound_names",
           "guarded_names", "autograded_notebook", "clean", "escape_html"]

MAX_NOTEBOOK_BYTES = 20 * 2**20
_SURROGATE = re.compile("[\ud800-\udfff]")
_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


@dataclass(frozen=True)
class Cell:
    """One cell of the instructor's source notebook."""

    kind: str            # "test", "answer", "written", "setup" or "text"
    grade_id: str
    points: float
    source: str
    index: int


@dataclass
class Submission:
    """What a student submitted for one notebook: answers by grade id, extra code, notes."""

    answers: dict = field(default_factory=dict)      # grade_id -> source
    extra: dict = field(default_factory=dict)        # grade_id before them ("" first) -> sources
    notes: list = field(default_factory=list)
    fatal: str | None = None                         # nothing can be graded, and why


def clean(text) -> str:
    """``text`` as a string safe to store anywhere: lone surrogates become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text if isinstance(text, str) else str(text))


def escape_html(text: str) -> str:
    """Student text made inert in HTML (and in Markdown rendered to HTML)."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _source(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _kind(nbgrader: dict, cell_type) -> str:
    if nbgrader.get("solution") is True:
        return "answer" if cell_type == "code" else "written"
    if nbgrader.get("grade") is True and cell_type == "code":
        return "test"
    return "setup" if cell_type == "code" else "text"


def _nbgrader(cell) -> dict:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    value = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else {}


def source_cells(notebook: dict) -> list[Cell]:
    """The cells of a (trusted) source notebook, as :class:`Cell`."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        meta = _nbgrader(cell)
        points = float(meta.get("points") or 0) if meta.get("grade") else 0.0
        cells.append(Cell(_kind(meta, cell.get("cell_type")), str(meta.get("grade_id") or ""),
                          points, _source(cell.get("source", "")) or "", index))
    return cells


def read_submission(data: bytes | None, name: str, cells: list[Cell]) -> Submission:
    """Read a submitted notebook's bytes (``None``: missing) against the source's cells."""
    result = Submission()
    if data is None:
        result.fatal = f"the notebook {name} is missing from the submission"
        return result
    if len(data) > MAX_NOTEBOOK_BYTES:
        result.fatal = f"{name} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
        return result
    try:
        notebook = json.loads(data.decode("utf-8", "replace"))
        raw_cells = notebook["cells"]
        if not isinstance(raw_cells, list):
            raise TypeError("'cells' is not a list")
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        result.fatal = clean(f"{name} is not a valid notebook ({type(error).__name__}: "
                             f"{str(error)[:200]})")
        return result
    expected = {c.grade_id: c for c in cells if c.grade_id}
    # the release's own code cells: already run as the source's setup (grader and worker)
    setup = {c.source.strip() for c in cells if c.kind == "setup"}
    seen, last = [], ""
    for position, cell in enumerate(raw_cells):
        if not isinstance(cell, dict):
            result.notes.append(f"cell {position} is not a JSON object (ignored)")
            continue
        meta = cell.get("metadata")
        nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
        if meta is not None and not isinstance(meta, dict) or \
                nbgrader is not None and not isinstance(nbgrader, dict):
            result.notes.append(f"cell {position} has metadata of the wrong type (ignored)")
        grade_id = (nbgrader or {}).get("grade_id") if isinstance(nbgrader, dict) else None
        if grade_id is not None and not isinstance(grade_id, str):
            result.notes.append(f"cell {position} has a grade_id of type "
                                f"{type(grade_id).__name__} (ignored)")
            grade_id = None
        source = _source(cell.get("source", ""))
        if source is None:
            result.notes.append(f"cell {position} has a source that is not text (ignored)")
            continue
        if grade_id not in expected:
            if cell.get("cell_type") == "code" and source.strip() and \
                    source.strip() not in setup:      # a cell the student added or edited
                result.extra.setdefault(last, []).append(source)
            continue
        seen.append(grade_id)
        last, reference = grade_id, expected[grade_id]
        if reference.kind in ("answer", "written"):
            wanted = "code" if reference.kind == "answer" else "markdown"
            if cell.get("cell_type") != wanted:
                result.notes.append(f"answer cell {grade_id!r} was changed to a "
                                    f"{clean(cell.get('cell_type'))[:20]} cell: graded as empty")
            elif grade_id not in result.answers:
                result.answers[grade_id] = source
        elif reference.kind == "test" and _strip_hidden(source) != \
                _strip_hidden(reference.source):
            result.notes.append(f"test cell {grade_id!r} was edited "
                                "(ignored: tests come from the source)")
    for grade_id, reference in expected.items():
        if grade_id not in seen and reference.kind != "text":
            result.notes.append(f"{reference.kind} cell {grade_id!r} was deleted"
                                + (" (graded as empty)" if reference.kind in ("answer", "written")
                                   else " (ignored: tests come from the source)"))
    if seen != [g for g in expected if g in seen]:
        result.notes.append("cells were reordered (answers matched by grade_id, run in source "
                            "order)")
    result.notes = [clean(n) for n in result.notes]
    return result


def _strip_hidden(source: str) -> str:
    return _HIDDEN.sub("", source).strip()


def bound_names(source: str) -> set[str]:
    """Top-level names ``source`` binds: def, class, assignment, import, for/with targets.

    Statements nested in top-level ``if``/``try``/``for``/``while``/``with`` count; bodies
    of functions and classes do not. Unparseable source binds nothing.
    """
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
            continue
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        for attr in ("body", "orelse", "finalbody", "handlers"):
            stack.extend(getattr(node, attr, []) if not isinstance(node, ast.expr) else [])
    return names


def guarded_names(test_sources: list[str]) -> list[str]:
    """The string arguments of every ``disabled(...)`` call in the tests (AST, not regex)."""
    names = set()
    for source in test_sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr",
                                                      getattr(node.func, "id", "")) == "disabled":
                names |= {a.value for a in node.args
                          if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return sorted(names)


def autograded_notebook(source: dict, release: dict | None, answers: dict, errors: dict) -> str:
    """The source notebook with the student's answers and each failure as an error output.

    Written answers are HTML-escaped, so no student markup is live in nbgrader's feedback.
    """
    release_meta, stubs = {}, {}
    for cell in (release or {}).get("cells", []):
        meta = _nbgrader(cell)
        if meta.get("grade_id"):
            release_meta[meta["grade_id"]] = meta
            stubs[meta["grade_id"]] = _source(cell.get("source", "")) or ""
    notebook = copy.deepcopy(source)
    for cell in notebook["cells"]:
        meta = _nbgrader(cell)
        grade_id = meta.get("grade_id")
        if grade_id in release_meta:              # the release metadata carries the checksums
            cell["metadata"]["nbgrader"] = copy.deepcopy(release_meta[grade_id])
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        kind = _kind(meta, cell.get("cell_type"))
        if kind in ("answer", "written"):                # never the instructor's solution
            text = clean(answers.get(grade_id, stubs.get(grade_id, "")))
            cell["source"] = escape_html(text) if kind == "written" else text
        if grade_id in errors:
            reason = clean(errors[grade_id])
            cell["outputs"] = [{"output_type": "error", "ename": "GradingFailure",
                                "evalue": reason.split("\n")[0],
                                "traceback": reason.split("\n")}]
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
