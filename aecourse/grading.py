"""Helpers for the assignments' tests, and the instructor's ``aecourse`` command.

* Hidden tests in ``solutions/<ps>`` use :func:`disabled` so that a graded function is the
  student's own work (the library's version raises :class:`DelegationError` meanwhile),
  :func:`replaced` so that a test of one function never depends on the student's other
  functions, and :func:`assert_close` / :func:`assert_shape` / :func:`assert_true` so that
  every failure says what was expected and what came.
* :func:`active_disabled` and :func:`active_replacements` say what is disabled and what is
  replaced right now: the class grader (:mod:`aecourse.grader`) answers the student's worker from
  them, so the decision is never taken by code the student can patch.

Chapter: assignments ps1-ps5 (see the instructor guide).
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager

import numpy as np

__all__ = ["DelegationError", "disabled", "replaced", "active_disabled", "active_replacements",
           "library_functions",
           "assert_close", "assert_shape", "assert_true", "quick_check"]


class DelegationError(RuntimeError):
    """Raised when graded code calls a library function it was asked to write itself."""


# ---------------------------------------------------------------- disabling library functions
# function object -> [its original __code__, list of active tokens (message, ...)]
_ACTIVE: dict = {}
# (namespace, name, value) of every replaced() block in force, innermost last
_REPLACED: list = []


def library_functions(name: str):
    """The function(s) called ``name`` (``"losses.squared_error"`` or a full dotted path).

    A class stands for every plain function defined in its body (``__init__``, ``fit``, ...).
    """
    parts = name.split(".")
    candidates = [parts] if parts[0] == "aecourse" else [["aecourse", *parts], parts]
    for path in candidates:
        for cut in range(len(path) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(path[:cut]))
            except ImportError:
                continue
            try:
                for attr in path[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            full = ".".join(path)
            if isinstance(obj, type):
                funcs = [getattr(f, "__func__", f) for f in vars(obj).values()]
                funcs = [f for f in funcs if hasattr(f, "__code__")]
                return full, funcs
            obj = getattr(obj, "__func__", obj)            # bound/class methods
            if not hasattr(obj, "__code__"):
                raise TypeError(f"disabled: {full} is a {type(obj).__name__}, not a Python "
                                "function or class, so it cannot be disabled.")
            return full, [obj]
    raise ValueError(f"disabled: no function called {name!r} in aecourse (or importable as a "
                     "full dotted path).")


def _raiser_code(message: str, n_free_vars: int):
    """A code object that raises DelegationError(message) whatever the arguments.

    It declares as many free variables as the function it replaces has closure cells,
    because CPython only lets ``__code__`` be swapped for one with the same number.
    """
    names = [f"_v{i}" for i in range(n_free_vars)]
    touch = "; ".join(names) or "pass"
    src = (f"def _outer():\n    {' = '.join(names + ['None']) if names else 'pass'}\n"
           f"    def _disabled(*args, **kwargs):\n        {touch}\n"
           f"        raise __import__('aecourse.grading', fromlist=['_']).DelegationError("
           f"{message!r})\n    return _disabled\n")
    namespace: dict = {}
    exec(src, namespace)  # noqa: S102  (a fixed template; only repr() of a string goes in)
    return namespace["_outer"]().__code__


def _install(func) -> None:
    original, tokens = _ACTIVE[func]
    if tokens:
        func.__code__ = _raiser_code(tokens[-1][0], len(original.co_freevars))
    else:
        func.__code__ = original
        del _ACTIVE[func]


@contextmanager
def disabled(*names: str, graded: str = "function"):
    """Make library functions raise :class:`DelegationError` inside the ``with`` block.

    The function objects themselves are changed (their ``__code__``), so aliases such
    as ``from aecourse.losses import squared_error`` are caught as well. Everything is
    restored on exit, also after an exception; nested and overlapping blocks work.

    Parameters
    ----------
    *names : str
        Functions relative to ``aecourse`` (``"losses.squared_error"``, ``"pca.PCA"``),
        or full dotted paths (``"scipy.linalg.subspace_angles"``). A class disables
        every method defined in its body.
    graded : str
        The student's function being graded, named in the error message.
    """
    installed = []
    try:
        for name in names:
            full, funcs = library_functions(name)
            message = (f"{full} is disabled while your {graded} is graded: write it "
                       "yourself (NumPy is fine) instead of calling the library's version.")
            for func in funcs:
                token = (message, object())
                _ACTIVE.setdefault(func, [func.__code__, []])[1].append(token)
                installed.append((func, token))
                _install(func)
        yield
    finally:
        for func, token in reversed(installed):
            _ACTIVE[func][1].remove(token)
            _install(func)


@contextmanager
def replaced(namespace: dict, **values):
    """Temporarily bind names in ``namespace`` (e.g. a notebook's ``globals()``).

    Hidden tests use it to swap a student's helper for a reference implementation,
    so that a bug in function A costs only A's points, not also those of B calling A.
    """
    missing = object()
    saved = {key: namespace.get(key, missing) for key in values}
    namespace.update(values)
    entries = [(namespace, key, value) for key, value in values.items()]
    _REPLACED.extend(entries)
    try:
        yield
    finally:
        for entry in entries:                    # by identity: values may be arrays
            del _REPLACED[next(i for i, e in enumerate(_REPLACED) if e is entry)]
        for key, value in saved.items():
            if value is missing:
                namespace.pop(key, None)
            else:
                namespace[key] = value


def active_disabled() -> dict:
    """What :func:`disabled` has in force right now.

    Returns
    -------
    dict
        ``"module.qualname"`` of each disabled function -> the message its call raises with
        (the innermost block's).
    """
    return {f"{func.__module__}.{func.__qualname__}": tokens[-1][0]
            for func, (_, tokens) in _ACTIVE.items() if tokens}


def active_replacements(namespace: dict) -> dict:
    """The names :func:`replaced` has bound in ``namespace`` right now -> their values."""
    return {name: value for where, name, value in _REPLACED if where is namespace}


# ---------------------------------------------------------------- assertions with clear messages
def _as_numpy(x):
    if hasattr(x, "detach"):                                  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _show(a: np.ndarray) -> str:
    return np.array2string(a, precision=6, threshold=12, edgeitems=3, separator=", ")


def assert_shape(actual, shape, *, what: str) -> None:
    """Fail unless ``actual`` has exactly ``shape`` (a tuple), saying what came."""
    got = tuple(_as_numpy(actual).shape)
    if got != tuple(shape):
        raise AssertionError(f"{what}: expected shape {tuple(shape)}, got shape {got}.")


def assert_true(condition, msg: str) -> None:
    """Fail with ``msg`` (which should say what was expected and what came)."""
    if not condition:
        raise AssertionError(msg)


def assert_close(actual, expected, *, what: str, rtol: float = 1e-6, atol: float = 1e-8):
    """Fail unless ``actual`` equals ``expected`` within ``atol + rtol * |expected|``.

    The message gives both shapes, both values (abridged) and the largest difference.
    Works for Python numbers, NumPy arrays and torch tensors.
    """
    try:
        if actual is None:
            raise TypeError
        a = _as_numpy(actual).astype(np.float64)
    except (TypeError, ValueError):
        hint = " (did the function forget to return?)" if actual is None else ""
        raise AssertionError(f"{what}: expected numbers like {_show(_as_numpy(expected))}, got "
                             f"{type(actual).__name__} {actual!r:.80}{hint}.") from None
    e = _as_numpy(expected).astype(np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: expected shape {e.shape}, got shape {a.shape}.\n"
                             f"expected: {_show(e)}\ngot:      {_show(a)}")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{what}: expected finite values, got {_show(a)} "
                             f"({int(np.sum(~np.isfinite(a)))} NaN/inf entries).")
    diff = np.abs(a - e)
    bad = diff > atol + rtol * np.abs(e)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.where(bad, diff, -1.0)), diff.shape) if diff.ndim else ()
        where = f" at index {tuple(int(k) for k in i)}" if diff.ndim else ""
        raise AssertionError(
            f"{what}: values differ. Expected {_show(e)}, got {_show(a)} (shape {a.shape}); "
            f"max |difference| = {diff.max():.3g}{where}, {int(bad.sum())} of {bad.size} "
            f"entries outside rtol={rtol:g}, atol={atol:g}.")


def quick_check(got, expected, *, what: str, hint: str, mistakes=(), rtol: float = 1e-6,
                atol: float = 1e-9) -> None:
    """A visible check: fail with "expected ..., got ..." first, then the likely cause.

    ``mistakes`` lists ``(cause, value)`` pairs: when ``got`` equals one of those values, that
    cause is named; otherwise ``hint`` is. Numbers, NumPy arrays and torch tensors all work.
    """
    def as_floats(x):                   # None for what is not numbers (None, text, ...)
        try:
            a = _as_numpy(x)
            return None if a.dtype.kind not in "biuf" else a.astype(np.float64)
        except (TypeError, ValueError):
            return None

    def close(a, b):
        a, b = as_floats(a), as_floats(b)
        return (a is not None and b is not None and a.shape == b.shape
                and bool(np.allclose(a, b, rtol=rtol, atol=atol)))

    def show(x):
        a = as_floats(x)
        if a is None:
            return f"{type(x).__name__} {x!r:.60}"
        shape = f" (shape {a.shape})" if a.shape != as_floats(expected).shape else ""
        return _show(a) + shape

    if not close(got, expected):
        cause = next((cause for cause, value in mistakes if close(got, value)), None)
        raise AssertionError(f"expected {show(expected)}, got {show(got)}: {what}. "
                             + (f"That is what {cause} gives." if cause
                                else f"Likely cause: {hint}"))
