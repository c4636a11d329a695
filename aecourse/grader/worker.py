"""The student side: one process that runs one submission's code and answers the grader.

It is started (forked, or ``python -m aecourse.grader.worker READ_FD WRITE_FD`` after a crash)
and confined by :mod:`aecourse.grader.isolation` before it reads anything, then:

1. **Bootstrap**, before any student code: the grader's first request names the library
   functions the assignment's tests ever disable; :mod:`aecourse.grader.guard` makes each ask
   the grader whether it is disabled right now, and installs an audit hook that keeps it so.
2. **Serve**: run a cell's code, describe named globals, call a function, get an attribute or
   item ... and answer with plain data only (:mod:`aecourse.grader.protocol`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import types

from aecourse.grader import autograd, inplace
from aecourse.grader.guard import install_audit_hook, install_guards
from aecourse.grader.protocol import Channel, ProtocolError, encode

__all__ = ["Worker", "main"]

class _Callback:
    """A grader-side function (defined in a test) that the student's code may call."""

    def __init__(self, worker, number: int):
        self._worker, self._number = worker, number

    def __call__(self, *args, **kwargs):
        return self._worker.ask({"op": "callback", "id": self._number}, [list(args), kwargs])


class Worker:
    """Serve the grader's requests until it says ``quit`` or closes the channel."""

    def __init__(self, channel: Channel, namespace: dict | None = None):
        self.channel = channel
        self.namespace = {} if namespace is None else namespace
        self.namespace.update({"__name__": "__main__", "__builtins__": __builtins__})
        self.handles: dict[int, object] = {}
        self.changed: list = []             # [place, array] of the last call's arguments
        self.jacobians = None               # the last call's gradients (autograd.Jacobians)

    def _keep(self, value):
        self.handles[len(self.handles) + 1] = value
        return {"t": "handle", "id": len(self.handles), "type": type(value).__name__[:100]}

    def _load(self, reference):
        kind, key = reference
        if kind == "handle":
            return self.handles[key]
        if kind == "global":
            return self.namespace[key]
        if kind == "callback":
            return _Callback(self, key)
        raise ProtocolError(f"unknown reference {reference!r}")

    def _send(self, header: dict, value=None, with_value: bool = False,
              on_tensor=None) -> None:
        payloads: list = []
        if with_value:
            try:
                header = {**header, "value": encode(value, payloads, self._keep,
                                                    on_tensor=on_tensor)}
            except Exception as error:  # noqa: BLE001  (student objects may raise anything)
                header, payloads = _error(error, "could not send the result back"), []
        if self.changed:                # the call's arguments it changed in place
            header = {**header, "changed": [[place, encode(array, payloads, self._keep)]
                                            for place, array in self.changed]}
            self.changed = []
        self.channel.send_data(header, payloads)

    def ask(self, header: dict, value):
        """Ask the grader something in the middle of a request (a callback, a guard)."""
        self._send(header, value, with_value=value is not None)
        _, reply = self.channel.receive(allow_pickle=True, persistent_load=self._load)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "the grader function failed"))
        return reply.get("value")

    def handle(self, request: dict) -> bool:
        op, self.jacobians = request["op"], None
        if op == "quit":
            return False
        try:
            if op == "exec":
                code = compile(request["code"], f"<cell {request['cell']}>", "exec")
                exec(code, self.namespace)  # noqa: S102  (running student code is the job)
                self._send({"ok": True})
                return True
            if op == "describe":
                self._send({"ok": True}, self._describe(request["names"]), with_value=True)
                return True
            with self._overrides(request.get("overrides") or {}, request.get("hidden") or []):
                value = self._apply(op, request)
            self._send({"ok": True}, value, with_value=True, on_tensor=self.jacobians)
        except BaseException as error:  # noqa: BLE001  (includes SystemExit from student code)
            if isinstance(error, ProtocolError):
                raise
            self._send(_error(error))
        return True

    @contextlib.contextmanager
    def _overrides(self, values: dict, hidden: list):
        """The grader's replacements of student names (``grading.replaced``), and the names a
        test deleted, for one request."""
        missing = object()
        saved = {name: self.namespace.get(name, missing) for name in [*values, *hidden]}
        for name in hidden:
            self.namespace.pop(name, None)
        self.namespace.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is missing:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value

    def _apply(self, op: str, request: dict):
        target = self._load(request["target"])
        if op == "call":
            watched = inplace.watch(request["args"], request["kwargs"])
            inputs = autograd.inputs(request["args"], request["kwargs"]) \
                if request.get("grad") else []
            if len(inputs) != int(request.get("grad") or 0):
                raise RuntimeError("the grader and the worker found different tensors that require "
                                   "a gradient among the call's arguments (a grader bug)")
            self.jacobians = autograd.Jacobians(inputs) if inputs else None
            try:
                return target(*request["args"], **request["kwargs"])
            finally:                    # changed in place, also by a call that raised
                self.changed = inplace.changed(watched)
        if op == "getattr":
            return getattr(target, request["name"])
        if op == "getitem":
            return target[request["key"]]
        if op == "len":
            return len(target)
        if op == "list":
            return list(target)
        raise ValueError(f"unknown request {op!r}")

    def _describe(self, names: list[str]) -> dict:
        """Each requested global: a module, a function, or its value (plain data or handle)."""
        out = {}
        for name in names:
            if name in self.namespace:
                value = self.namespace[name]
                out[name] = ("module" if isinstance(value, types.ModuleType)
                             else "callable" if callable(value) else [value])
        return out

    def serve(self) -> None:
        _, start = self.channel.receive(allow_pickle=True)
        os.environ.update(start.get("env", {}))
        install_audit_hook(*install_guards(self, start.get("guarded", [])))
        self.channel.send_data({"ok": True, "ready": True}, [])
        while True:
            _, request = self.channel.receive(allow_pickle=True, persistent_load=self._load)
            if not self.handle(request):
                return


def _error(error: BaseException, context: str = "") -> dict:
    try:                                  # a student's exception may fail to print itself
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = f"{context}: {error}" if context else str(error)
    except BaseException:  # noqa: BLE001
        text, message = "", f"{context}: an exception that cannot be printed"
    return {"ok": False, "error": {"type": type(error).__name__[:100],
                                   "message": message[:4000], "traceback": text[-8000:]}}


def serve(read_fd: int, write_fd: int, namespace: dict | None = None) -> int:
    """Serve one submission on the two descriptors (the student's code runs in
    ``namespace``, which may hold the release's setup already); stdin becomes /dev/null."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        Worker(Channel(read_fd, write_fd), namespace).serve()
    except (ProtocolError, OSError):
        return 1
    return 0


def main(argv=None) -> int:
    """``python -m aecourse.grader.worker READ_FD WRITE_FD`` (the restart after a crash)."""
    argv = sys.argv[1:] if argv is None else argv
    return serve(int(argv[0]), int(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
