"""The book's sources: chapters glue their numbers without needing myst-nb, and the settings
of the published book live in one place.

The book itself is built, served and opened in a browser by tests/test_publish.py, from the
student edition (each chapter executes once in the whole test suite).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from aecourse import notebook

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "book").glob("*.ipynb"))


def _displayed(monkeypatch, glue_function, name, value, display):
    """What ``glue_function`` hands to IPython's display: (args, kwargs) of each call."""
    import IPython.display
    import myst_nb.ext.glue

    calls = []
    record = lambda *args, **kwargs: calls.append((args, kwargs))  # noqa: E731
    monkeypatch.setattr(IPython.display, "display", record)
    monkeypatch.setattr(myst_nb.ext.glue, "ipy_display", record)
    glue_function(name, value, display=display)
    return calls


@pytest.mark.parametrize("display", [True, False])
@pytest.mark.parametrize("value", [0.0138, "text", [1, 2]])
def test_glue_without_myst_nb_emits_what_myst_nb_emits(monkeypatch, value, display):
    from myst_nb import glue as myst_nb_glue

    theirs = _displayed(monkeypatch, myst_nb_glue, "ch4_mse", value, display)
    ours = _displayed(monkeypatch, notebook._glue_without_myst_nb, "ch4_mse", value, display)
    assert ours == theirs and len(ours) == 1
    (bundle,), options = ours[0]
    assert options["metadata"]["scrapbook"]["name"] == "ch4_mse"
    prefix = "" if display else notebook.GLUE_PREFIX
    assert all(key.startswith(prefix) for key in bundle)


def test_glue_uses_myst_nb_when_it_is_importable_and_the_fallback_otherwise(monkeypatch):
    import builtins

    import myst_nb

    used = []
    monkeypatch.setattr(myst_nb, "glue", lambda *a, **k: used.append("myst_nb"))
    monkeypatch.setattr(notebook, "_glue_without_myst_nb", lambda *a, **k: used.append("ours"))
    notebook.glue("x", 1.0)
    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError("no myst_nb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    notebook.glue("x", 1.0)
    assert used == ["myst_nb", "ours"]


def test_glue_refuses_a_name_that_is_not_a_string():
    with pytest.raises(TypeError, match="name must be a non-empty str, got 3"):
        notebook.glue(3, 1.0)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_imports_glue_from_the_library_not_from_myst_nb(path):
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "from aecourse.notebook import glue" in code[0]
    assert not any(re.search(r"\bmyst_nb\b", source) for source in code), \
        f"{path.name} imports myst_nb, which a student's Colab or Binder does not have"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{path.name} is stored with outputs"


def test_where_the_book_is_published_is_set_in_course_yml_only():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert "repository" not in config, "the repository belongs in course.yml"
    assert "jupyterhub_url" not in config.get("launch_buttons", {})
    course = yaml.safe_load((REPO / "course.yml").read_text())
    assert set(course) == {"student_repository", "release", "jupyterhub_url", "instructor_pages"}
    assert "{version}" in course["release"], "the release tag follows aecourse.__version__"
    citation = (REPO / "CITATION.cff").read_text()
    assert not re.search(r"^(version|repository-code):", citation, flags=re.M), \
        "CITATION.cff gets its version and repository from `aecourse publish`"


# ------------------------------------------------------------------ the page's conventions
# Every chapter follows them (tests below); a chapter not yet converted is listed here and its
# tests are expected to fail (strict: once it conforms, remove it from the list).
MAX_CODE_LINE = 88          # characters: a laptop's book column shows this much, no scrolling
ASSERTED = "**Asserted:**"  # opens the one visible sentence that says what a folded cell checks
MAX_ASSERTED = 240          # characters of that paragraph: a line or two on the page
FOLD = "hide-input"         # the tag that folds a cell's code (Jupyter Book's toggle)


def _chapter_params():
    return [pytest.param(p, id=p.stem) for p in CHAPTERS]


def _is_check(node) -> bool:
    """An ``assert``, a ``glue(...)`` call, or a loop/``with`` made only of these."""
    import ast
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return getattr(node.value.func, "id", None) == "glue"
    if isinstance(node, (ast.For, ast.With)):
        return all(_is_check(child) for child in node.body) and not getattr(node, "orelse", [])
    return False


def _calls(tree) -> set[str]:
    """Names of everything the code calls: ``print``, ``plt.show``, ``plots.plot_history``."""
    import ast
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            names.add(ast.unparse(node.func))
    return names


def check_folding(cells) -> list[str]:
    """The folding convention, for a chapter's cells (nbformat cells); a list of violations.

    1. A code cell whose statements are only asserts and glue calls (or loops of them) is
       tagged ``hide-input``: a check is folded, the page shows the teaching code.
    2. A ``hide-input`` cell asserts or glues something, and shows nothing: no print, no
       plot (its output would appear without the code that made it).
    3. No check is left at the end of a visible cell, and no glue call is visible: a teaching
       cell followed by its checks is split, the checks going to a folded cell.
    4. The cell right before a ``hide-input`` cell is Markdown whose last paragraph starts
       with ``**Asserted:**`` and is at most 240 characters long: what the folded cell checks,
       in one sentence a reader sees without unfolding anything.
    """
    import ast
    problems = []
    for k, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            problems.append(f"cell {k} does not parse: {exc}")
            continue
        only_checks = bool(tree.body) and all(_is_check(node) for node in tree.body)
        if only_checks and FOLD not in tags:
            problems.append(f"cell {k} only asserts/glues but is not tagged {FOLD!r}")
        if FOLD not in tags:
            if tree.body and _is_check(tree.body[-1]) and not only_checks:
                problems.append(f"cell {k} ends with checks: move them to a folded cell")
            if "glue" in _calls(tree):
                problems.append(f"cell {k} glues in a visible cell: glue in a folded one")
            continue
        checks = [n for n in ast.walk(tree) if _is_check(n)]
        if not checks:
            problems.append(f"cell {k} is folded ({FOLD}) but asserts and glues nothing")
        shown = {c for c in _calls(tree)
                 if c == "print" or c.startswith(("plt.", "plots.", "display"))}
        if shown:
            problems.append(f"cell {k} is folded but shows output: {sorted(shown)}")
        before = cells[k - 1] if k else None
        paragraphs = (before.source.strip().split("\n\n")
                      if before is not None and before.cell_type == "markdown" else [""])
        last = paragraphs[-1].strip()
        if not last.startswith(ASSERTED) or len(last) > MAX_ASSERTED:
            problems.append(f"cell {k} is folded but the Markdown cell before it does not end "
                            f"with a paragraph of at most {MAX_ASSERTED} characters starting "
                            f"{ASSERTED!r}: {last[-120:]!r}")
    return problems


@pytest.mark.parametrize("path", _chapter_params())
def test_check_cells_are_folded_and_say_in_one_visible_line_what_they_assert(path):
    assert_follows(check_folding, path)


def assert_follows(convention, path: Path):
    """Fail with every violation that ``convention`` (a function of the cells) finds."""
    problems = convention(nbformat.read(path, as_version=4).cells)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def _includes(markdown: str):
    """Each ``literalinclude`` directive of a Markdown cell: (path, options dict)."""
    pattern = re.compile(r"```\{literalinclude\}\s+(\S+)\n((?::[^\n]*\n)*)", re.M)
    for match in pattern.finditer(markdown if markdown.endswith("\n") else markdown + "\n"):
        options = {}
        for line in match.group(2).splitlines():
            key, _, value = line[1:].partition(":")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            options[key.strip()] = value
        yield match.group(1), options


def included_text(path: Path, options: dict) -> str:
    """What Sphinx shows for one literalinclude (its own reader, so markers must exist)."""
    from types import SimpleNamespace

    from sphinx.directives.code import LiteralIncludeReader
    options = dict(options)
    if "dedent" in options:
        options["dedent"] = int(options["dedent"])
    reader = LiteralIncludeReader(str(path), options, SimpleNamespace(source_encoding="utf-8"))
    text, _ = reader.read()
    return text


def test_included_text_follows_the_markers_and_the_prepended_signature():
    text = included_text(REPO / "aecourse" / "gradcheck.py",
                         {"start-after": "# book: begin rel_error",
                          "end-before": "# book: end rel_error",
                          "prepend": "def rel_error(a, b):"})
    assert text.splitlines()[0] == "def rel_error(a, b):"
    assert "np.max(np.abs(a - b))" in text and "raise" not in text and '"""' not in text


def test_a_missing_marker_is_an_error_not_an_empty_include():
    with pytest.raises(ValueError):
        included_text(REPO / "aecourse" / "gradcheck.py",
                      {"start-after": "# book: begin no_such_block"})


@pytest.mark.parametrize("path", _chapter_params())
def test_code_on_the_page_fits_the_column_and_shows_no_input_checks(path):
    """Code cells and included library code: lines of at most 88 characters; an included
    library function shows its computation, not its docstring or input checks."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            problems += [f"cell {k}: {len(line)} characters: {line}"
                         for line in cell.source.splitlines() if len(line) > MAX_CODE_LINE]
            continue
        for target, options in _includes(cell.source):
            text = included_text((path.parent / target).resolve(), options)
            where = f"cell {k}, {target} {options.get('pyobject') or options.get('start-after')}"
            problems += [f"{where}: {len(line)} characters: {line}"
                         for line in text.splitlines() if len(line) > MAX_CODE_LINE]
            if "/aecourse/" in target:
                statements = [line.strip() for line in text.splitlines()]
                for shown in ('"""', "raise ", "_check"):
                    if any(line.startswith(shown) for line in statements):
                        problems.append(f"{where}: shows {shown!r} (a docstring or an input "
                                        f"check); include only the computation")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


FIGURE = re.compile(r"```\{figure\}\s+(\S+)\n((?::[^\n]*\n)*)\n?(.*?)```", re.S)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_diagram_exists_is_svg_and_has_alt_text_and_a_caption(path):
    import xml.etree.ElementTree as ET
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for target, option_lines, caption in FIGURE.findall(cell.source):
            options = dict(line[1:].partition(":")[::2] for line in option_lines.splitlines())
            assert options.get("alt", "").strip(), f"{path.name}: {target} has no :alt:"
            assert caption.strip(), f"{path.name}: {target} has no caption"
            figure = (path.parent / target).resolve()
            assert figure.is_file() and figure.suffix == ".svg", f"{path.name}: {target}"
            root = ET.parse(figure).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg", f"{target} is not SVG"
            assert root.get("width") and root.get("viewBox"), \
                f"{target}: an <img> of an SVG needs its width and viewBox to have a size"
            assert root.find("{http://www.w3.org/2000/svg}title") is not None, \
                f"{target}: no <title> (what a screen reader announces)"
            assert "://" not in figure.read_text().replace("http://www.w3.org/", ""), \
                f"{target} refers to something outside the book"


def test_the_folding_check_catches_an_unfolded_check_and_a_missing_sentence():
    new = nbformat.v4
    good = [new.new_markdown_cell(f"Text.\n\n{ASSERTED} the shapes are right."),
            new.new_code_cell("assert x.shape == (2, 3)\nglue('a', 1)",
                              metadata={"tags": [FOLD]})]
    assert check_folding(good) == []
    unfolded = [good[0], new.new_code_cell("assert x.shape == (2, 3)")]
    assert "not tagged" in check_folding(unfolded)[0]
    silent = [new.new_markdown_cell("Text."), good[1]]
    assert "does not end with a paragraph" in check_folding(silent)[0]
    too_long = [new.new_markdown_cell(f"{ASSERTED} the shapes " + "and more " * 30), good[1]]
    assert "does not end with a paragraph" in check_folding(too_long)[0]
    printing = [good[0], new.new_code_cell("assert x\nprint(x)", metadata={"tags": [FOLD]})]
    assert "shows output" in check_folding(printing)[0]
    trailing = [new.new_code_cell("y = f(x)\nassert y > 0")]
    assert "ends with checks" in check_folding(trailing)[0]
    visible_glue = [new.new_code_cell("for v in values:\n    glue('v', v)\nprint(v)")]
    assert "glues in a visible cell" in check_folding(visible_glue)[0]
    teaching = [good[0], new.new_code_cell("y = f(x)", metadata={"tags": [FOLD]})]
    assert "asserts and glues nothing" in check_folding(teaching)[0]


# ------------------------------------------------------------------ figures: caption and alt
# A code cell that draws a matplotlib figure carries myst-nb's figure metadata, as chapters 8
# and 9 first did: {"mystnb": {"figure": {"caption": ..., "name": "fig-..."},
# "image": {"alt": ...}}}. Without it myst-nb writes the image's file path as its alt text.
#
# The rule that finds a drawing cell reads the code and executes nothing. The book draws in
# three ways, so a cell draws a figure when its code calls
#   * matplotlib's pyplot, ``plt.<anything>`` (``plt.subplots``, ``plt.show``, ...),
#   * a function of ``aecourse.plots`` that returns a Figure (its numpydoc "Returns" section
#     says ``matplotlib.figure.Figure``): ``plots.show_images``, ``plots.plot_history``, ...
#     (``plots.max_activating_inputs`` computes an array and draws nothing), or
#   * a function that an earlier cell of the chapter defines and that itself draws.
# Defining a function draws nothing; calling it does. A figure is made by ``plt.subplots``,
# ``plt.figure``, one of those plots functions or such a chapter function; a cell makes
# exactly one (none inside a loop), because myst-nb gives every image output of the cell
# the same caption, alt and name.
MIN_ALT_WORDS = 10       # what is plotted and the take-away: a sentence, not a label
MIN_CAPTION_WORDS = 5
PLACEHOLDER = re.compile(r"\b(todo|fixme|tbd|xxx|placeholder|lorem|alt text|caption)\b"
                         r"|\.\.\.|…", re.I)
GENERATED = re.compile(r"\.(png|jpe?g|svg|gif|webp)\b|_images/|\b[0-9a-f]{16,}\b", re.I)


def _figure_functions() -> set[str]:
    """The functions of ``aecourse.plots`` that draw: they return a Figure (read, not run)."""
    import ast
    tree = ast.parse((REPO / "aecourse" / "plots.py").read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
            and "matplotlib.figure.Figure" in (ast.get_docstring(node) or "").partition(
                "Returns")[2]}


def figures_made(source: str, drawers: set[str]) -> tuple[bool, int, bool]:
    """(draws, figures made, a figure made inside a loop) for one code cell's source.

    ``drawers`` names the functions that make a figure, and grows by the functions that
    this cell defines and that draw (the chapter's own plotting helpers).
    """
    import ast
    draws, made, in_loop = False, 0, False

    def visit(node, looping):
        nonlocal draws, made, in_loop
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            return                                  # a definition draws nothing yet
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.startswith("plt.") or name in drawers:
                draws = True
            if name in {"plt.subplots", "plt.figure"} or name in drawers:
                made += 1
                in_loop = in_loop or looping
        loop = isinstance(node, (ast.For, ast.While, ast.comprehension))
        for child in ast.iter_child_nodes(node):
            visit(child, looping or loop)

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            body = ast.Module(body=node.body, type_ignores=[])
            if figures_made(ast.unparse(body), drawers)[0]:
                drawers.add(node.name)
    visit(tree, False)
    return draws, made, in_loop


def text_problem(text, what: str, min_words: int) -> str | None:
    """Why ``text`` is no real caption or alt text (None when it is one)."""
    if not isinstance(text, str) or not text.strip():
        return f"no {what}"
    if GENERATED.search(text):
        return f"a generated {what} (a file name, path or hash): {text!r}"
    if PLACEHOLDER.search(text):
        return f"a placeholder {what}: {text!r}"
    if len(text.split()) < min_words:
        return f"a {what} of fewer than {min_words} words: {text!r}"
    return None


def generated_alt(alt: str, src: str) -> bool:
    """Whether an ``<img>``'s alt text is missing or made up by a tool, not written.

    myst-nb, given no ``image.alt`` metadata, writes the image's path as its alt, e.g.
    ``../_images/7bdc...eaf34.png``; Sphinx does the same for a figure without ``:alt:``.
    """
    alt = (alt or "").strip()
    return not alt or alt == (src or "").strip() or bool(GENERATED.search(alt))


def check_figures(cells) -> list[str]:
    """The figure convention, for a chapter's cells (nbformat cells); a list of violations."""
    problems = []
    drawers = {f"plots.{name}" for name in _figure_functions()}
    for k, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        try:
            draws, made, in_loop = figures_made(cell.source, drawers)
        except SyntaxError:
            continue                       # test_check_cells_are_folded... reports it
        if not draws:
            continue
        if made > 1 or in_loop:
            problems.append(f"cell {k} makes {made} figure(s){' in a loop' * in_loop}: one "
                            f"figure per cell (myst-nb gives each output the same caption)")
        mystnb = cell.get("metadata", {}).get("mystnb", {})
        figure, image = mystnb.get("figure", {}), mystnb.get("image", {})
        caption, alt = figure.get("caption"), image.get("alt")
        for problem in (text_problem(caption, "caption", MIN_CAPTION_WORDS),
                        text_problem(alt, "alt text", MIN_ALT_WORDS)):
            if problem:
                problems.append(f"cell {k} draws a figure with {problem}")
        if isinstance(alt, str) and alt.strip() == str(caption).strip():
            problems.append(f"cell {k}: the alt text repeats the caption; say what is shown")
        if not str(figure.get("name", "")).startswith("fig-"):
            problems.append(f"cell {k}: the figure has no name 'fig-...' to refer to it by")
    return problems


@pytest.mark.parametrize("path", _chapter_params())
def test_every_figure_a_cell_draws_has_a_caption_alt_text_and_a_name(path):
    assert_follows(check_figures, path)


def test_figure_names_are_unique_in_the_book():
    names = [cell.metadata["mystnb"]["figure"]["name"]
             for path in CHAPTERS for cell in nbformat.read(path, as_version=4).cells
             if "name" in cell.get("metadata", {}).get("mystnb", {}).get("figure", {})]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_the_figure_check_finds_drawing_cells_and_rejects_generated_alt_text():
    new = nbformat.v4
    alt = "A line falling from 3 to 0.1 over 20 epochs: training converges quickly."
    good = {"mystnb": {"figure": {"caption": "The training loss per epoch, log scale.",
                                  "name": "fig-x"}, "image": {"alt": alt}}}
    drawing = ["fig = plots.plot_history(h)\nplt.show()",
               "fig, ax = plt.subplots()\nax.plot(x, y)",
               "plots.show_filters(W)"]
    for source in drawing:
        assert check_figures([new.new_code_cell(source, metadata=good)]) == []
        assert "no caption" in check_figures([new.new_code_cell(source)])[0]
    assert check_figures([new.new_code_cell("F = plots.max_activating_inputs(W)\n"
                                            "y = ax_total + 1")]) == []
    looping = new.new_code_cell("for h in hs:\n    plots.plot_history(h)\n    plt.show()",
                                metadata=good)
    assert "in a loop" in check_figures([looping])[0]
    twice = new.new_code_cell("plots.plot_kl()\nplt.show()\nplots.plot_kl(0.1)", metadata=good)
    assert "makes 2 figure(s)" in check_figures([twice])[0]
    helper = new.new_code_cell("def show_pair(a, b):\n    fig, ax = plt.subplots()\n"
                               "    ax.plot(a, b)\n    return fig")
    assert check_figures([helper]) == []          # a definition draws nothing ...
    assert "no caption" in check_figures([helper, new.new_code_cell("show_pair(x, y)")])[0]
    assert check_figures([helper, new.new_code_cell("show_pair(x, y)", metadata=good)]) == []
    generated = ["../_images/7bdcd58f1324e8d26c36cea088fe043a1c60be4a9e4951d63128c4cf613eaf34"
                 ".png", "figure 3", "TODO: describe the plot of the loss over all epochs",
                 "", None]
    for bad in generated:
        metadata = {"mystnb": {"figure": good["mystnb"]["figure"], "image": {"alt": bad}}}
        problems = check_figures([new.new_code_cell("plots.plot_kl()", metadata=metadata)])
        assert len(problems) == 1 and "alt text" in problems[0], (bad, problems)


def test_generated_alt_is_what_myst_nb_and_sphinx_write_without_metadata():
    src = "../_images/7bdcd58f1324e8d26c36cea088fe043a1c60be4a9e4951d63128c4cf613eaf34.png"
    for alt in (src, "", "   ", None, "_images/hourglass.svg", "hourglass.svg",
                "7bdcd58f1324e8d26c36cea088fe043a"):
        assert generated_alt(alt, src), alt
    for alt in ("Binder logo", "Two rows of ten digits: originals above, codes below."):
        assert not generated_alt(alt, src), alt


def test_every_figure_reference_names_a_figure_of_the_book():
    names = {cell.metadata["mystnb"]["figure"]["name"]
             for path in CHAPTERS for cell in nbformat.read(path, as_version=4).cells
             if "name" in cell.get("metadata", {}).get("mystnb", {}).get("figure", {})}
    names |= {label for path in CHAPTERS for cell in nbformat.read(path, as_version=4).cells
              if cell.cell_type == "markdown"
              for label in re.findall(r"```\{figure\}[^`]*?\n:name:\s*(\S+)", cell.source)}
    cited = {(path.name, label) for path in CHAPTERS
             for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"
             for label in re.findall(r"\{(?:numref|ref)\}`(?:[^`<]*<)?(fig-[^`>]+)>?`",
                                     cell.source)}
    assert cited, "no chapter refers to a figure by name"
    assert not {c for c in cited if c[1] not in names}, sorted(c for c in cited
                                                               if c[1] not in names)
