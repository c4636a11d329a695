"""``glue``: put a number computed in a chapter into the book's prose, with or without myst-nb.

The book's chapters call ``glue("ch4_mse", mse, display=False)`` and the prose shows the value
with ``{glue:text}`ch4_mse:.4f```. myst-nb's ``glue`` does that by displaying the value as a
cell output marked with ``{"scrapbook": {"name": ..., "mime_prefix": ...}}`` metadata, which
the book build reads back from the executed notebook. A student's Colab, Binder or laptop has
no myst-nb (it is a book-building tool), so this module uses myst-nb's ``glue`` when it is
importable and otherwise emits the very same display output: a notebook executed without
myst-nb builds the same book.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]

# myst_nb.ext.glue.GLUE_PREFIX: hides the value from the page when display=False
GLUE_PREFIX = "application/papermill.record/"


def _glue_without_myst_nb(name: str, variable: Any, display: bool = True) -> None:
    """myst-nb's ``glue`` (version 1.x), for kernels where myst-nb is not installed."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    mimebundle, metadata = format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Store ``variable``'s display under ``name`` for the book's ``{glue}`` roles.

    Parameters
    ----------
    name : str
        The key the book's prose refers to, unique in the notebook.
    variable : object
        Any value; what is stored is its display (text, HTML, PNG, ...), as Jupyter shows it.
    display : bool, default True
        Show the value in the notebook too. ``False`` stores it without showing it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"glue: name must be a non-empty str, got {name!r}")
    try:
        from myst_nb import glue as myst_nb_glue
    except ImportError:
        myst_nb_glue = _glue_without_myst_nb
    myst_nb_glue(name, variable, display=display)
