"""The delegation guard, installed in the worker before any student code runs.

Each library function the assignment's tests ever disable gets a stub as its ``__code__``: it
asks the grader, over the channel, whether the function is disabled *right now* (the grader
answers from its own ``grading.active_disabled()``); disabled -> the stub raises
``DelegationError`` with the grader's message, allowed -> it runs the original code. Aliases
(``from aecourse.losses import squared_error``) are caught, since the function object itself
changes. Then an audit hook, which cannot be removed, refuses to swap any function's
``__code__``, to walk the garbage collector, to load ``ctypes`` or to run a guarded module's
code again (``importlib.reload``).

Known residual: the stub keeps a copy of the original function; a determined student can dig
it out of the stub's code constants (``f.__code__.co_consts``) or a closure, or copy the
library's source and run it under another name. The static flags (:mod:`.flags`) report such
submissions for a human to look at.
"""

from __future__ import annotations

import sys
import types
import warnings

__all__ = ["install_guards", "install_audit_hook"]

_SENTINEL = "__aecourse_guard__"


class _Guard:
    """Called by the stub of a guarded library function: ask the grader, then raise or run."""

    def __init__(self, worker, key: str, original, error):
        self._worker, self._key, self._original, self._error = worker, key, original, error

    def __call__(self, args, kwargs):
        message = self._worker.ask({"op": "guard", "name": self._key}, None)
        if message:
            raise self._error(str(message))
        return self._original(*args, **kwargs)


def _stub_code(n_free: int, guard):
    names = [f"_v{i}" for i in range(n_free)]
    source = (f"def _outer():\n    {' = '.join(names + ['None']) if names else 'pass'}\n"
              f"    def _guarded(*args, **kwargs):\n        {'; '.join(names) or 'pass'}\n"
              f"        return {_SENTINEL!r}(args, kwargs)\n    return _guarded\n")
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # "'str' object is not callable"
        exec(compile(source, "<aecourse guard>", "exec"), namespace)  # noqa: S102
    code = namespace["_outer"]().__code__
    return code.replace(co_consts=tuple(guard if c == _SENTINEL else c for c in code.co_consts))


def install_guards(worker, names: list[str]) -> tuple[set, set]:
    """Replace the code of every function called ``names`` by a stub asking the grader.

    Returns the guarded modules' source files and names (their code must not run again)."""
    from aecourse.grading import DelegationError, library_functions
    files, modules = set(), set()
    for name in names:
        try:
            _, funcs = library_functions(name)
        except (ValueError, TypeError, ImportError):
            continue                          # not a function here: nothing can delegate to it
        for func in funcs:
            original = types.FunctionType(func.__code__, func.__globals__, func.__name__,
                                          func.__defaults__, func.__closure__)
            original.__kwdefaults__ = func.__kwdefaults__
            key = f"{func.__module__}.{func.__qualname__}"
            func.__code__ = _stub_code(len(func.__code__.co_freevars),
                                       _Guard(worker, key, original, DelegationError))
            files.add(original.__code__.co_filename)
            modules.add(func.__module__)
    return files, modules


def install_audit_hook(guarded_files: set, guarded_modules: set) -> None:
    """Refuse, for the rest of this process's life, what would undo the guards."""
    refused = {"gc.get_referrers", "gc.get_referents", "gc.get_objects", "ctypes.dlopen",
               "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.cdata", "ctypes.addressof",
               "ctypes.string_at", "sys._current_frames"}

    def hook(event, args):
        if event in refused:
            raise RuntimeError(f"{event} is not allowed while grading")
        if event == "object.__setattr__" and len(args) > 1 and args[1] == "__code__":
            raise RuntimeError("replacing a function's __code__ is not allowed while grading")
        if event == "import" and args and args[0] in ("ctypes", "_ctypes", *guarded_modules):
            raise ImportError(f"importing {args[0]} is not allowed while grading")
        if event == "exec" and args and getattr(args[0], "co_filename", None) in guarded_files:
            raise RuntimeError("re-running the code of a graded library module is not allowed")

    sys.addaudithook(hook)


