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
