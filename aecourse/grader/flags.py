"""Static tampering indicators: what in a student's submitted source deserves a human look.

A flag is read from the submitted source (AST), never from running anything: references to
function internals (``__code__``, ``__closure__``, ``co_consts``, ``__globals__``), frames,
``gc``, ``ctypes``, ``sys.modules``, ``importlib``, trace/profile/audit hooks, or patching
``builtins``. Honest solutions, buggy or not, do none of this (measured on the ps1-ps5 bug
variants: no flag).
"""

from __future__ import annotations

import ast

__all__ = ["tamper_indicators"]

_TAMPER = {
    "__code__": "replaces or reads function code", "__closure__": "reads closures",
    "co_consts": "reads code constants", "__globals__": "reads a function's globals",
    "__builtins__": "touches __builtins__", "settrace": "installs a trace hook",
    "setprofile": "installs a profile hook", "reload": "reloads a module",
    "modules": "touches sys.modules", "addaudithook": "installs an audit hook",
    "get_referrers": "walks the garbage collector", "get_objects": "walks the garbage collector",
    "get_referents": "walks the garbage collector", "_getframe": "reads the call stack",
    "f_back": "reads the call stack", "f_globals": "reads another frame's globals",
}
_TAMPER_MODULES = {"ctypes": "imports ctypes", "gc": "imports gc", "builtins": "imports builtins",
                   "_ctypes": "imports ctypes", "importlib": "imports importlib"}


def tamper_indicators(source: str) -> list[str]:
    """Why ``source`` (a student's answer) looks like tampering with the grader, if it does."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _TAMPER:
            found.append(f"{_TAMPER[node.attr]} (.{node.attr}, line {node.lineno})")
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append(f"uses {node.id} (line {node.lineno})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in _TAMPER_MODULES:
                    found.append(f"{_TAMPER_MODULES[module.split('.')[0]]} (line {node.lineno})")
    return sorted(set(found))


