"""nbgrader's gradebook API imported without what grading never uses (seconds per process).

``import nbgrader.api`` first runs ``nbgrader/__init__``, which imports nbgrader's Jupyter
server extensions (handlers, the exchange, ...); and ``nbgrader.utils`` imports nbformat, whose
validator imports jsonschema, whose optional ``iri`` format check imports ``rfc3987_syntax``,
which compiles 38 Lark grammars when imported. Measured on the course's 2-core machine:
``import nbgrader.api`` takes 9-11 s loaded (about 3 s of that without these two), in the
command and again in its fork server. Grading uses none of it: neither nbformat nor nbgrader
validates with a format checker.

:func:`lighten` makes ``nbgrader`` a bare package (its submodules import as usual; its
``__init__`` does not run) and ``rfc3987_syntax`` absent (jsonschema then skips that one
format check, exactly as when the package is not installed). Only ``aecourse grade``'s own
processes call it, before anything imports nbgrader: never a Jupyter server, never
``aecourse release``.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["lighten"]


def lighten() -> None:
    """Make later ``import nbgrader.…`` skip nbgrader's server extensions and jsonschema's
    grammar compilation (no effect on what is already imported)."""
    if "nbgrader" not in sys.modules:
        spec = importlib.util.find_spec("nbgrader")
        if spec is not None and spec.submodule_search_locations is not None:
            package = types.ModuleType("nbgrader", "nbgrader, without its server extensions")
            package.__spec__, package.__file__ = spec, spec.origin
            package.__path__ = list(spec.submodule_search_locations)
            package.__package__ = "nbgrader"
            sys.modules["nbgrader"] = package
            package.__version__ = importlib.import_module("nbgrader._version").__version__
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)      # import raises ImportError
