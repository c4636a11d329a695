"""One worker's life, seen from the grader: requests under deadlines, callbacks, restarts.

Every request is bounded by the current cell's deadline and the submission's, so a cell making
many small requests, or triggering grader-side callbacks, still ends at its deadline. Callbacks
(functions a test passes to the student's code; the guard's "is this disabled now?") run here
under the same deadline, their results size-limited. A dead worker is restarted (a fresh
interpreter) and its cells replayed, at most ``limits.restarts`` times.
"""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
import signal
import time
import types

from aecourse import grading
from aecourse.grader import autograd, inplace
from aecourse.grader.deadlines import Overrun, alarm
from aecourse.grader.process import WorkerProcess, spawn
from aecourse.grader.protocol import ProtocolError, decode, importable

__all__ = ["Session", "Remote", "WorkerDied", "StudentError", "Overrun", "alarm"]


class WorkerDied(RuntimeError):
    """The student's process stopped (timeout, memory, crash, exit) during a request."""


class StudentError(RuntimeError):
    """The student's code raised (the message carries its traceback), or answered nonsense."""


def _student_error(type_name: str) -> type:
    """StudentError, also an instance of the builtin exception the student's code raised
    (``except ValueError`` in a test works as in one kernel)."""
    import builtins
    base = getattr(builtins, type_name, None)
    if isinstance(base, type) and issubclass(base, Exception) and base is not StudentError:
        try:
            return type(type_name, (StudentError, base), {})
        except TypeError:                          # e.g. OSError: another instance layout
            pass
    return StudentError


class Session:
    """Requests to one notebook's worker, on behalf of the tests running here."""

    def __init__(self, spec, worker: WorkerProcess, *, guarded: list[str], deadline: float):
        self.spec, self.worker, self.limits = spec, worker, spec.limits
        self.guarded, self.submission_deadline = guarded, deadline
        self.cell_deadline, self.generation, self.restarts = deadline, 1, 0
        self.replay: list[dict] = []            # the cells to run again after a restart
        self.callbacks: dict[int, object] = {}
        # the test namespace (for grading.replaced), the student names bound in it
        self.namespace, self.bound, self.student_names = {}, {}, set()
        self.death, self.output, self.notes = None, bytearray(), []   # notes: the submission's

    def begin_cell(self) -> None:
        self.cell_deadline = min(time.monotonic() + self.limits.timeout,
                                 self.submission_deadline)

    def _timed_out(self, what: str) -> str:
        if time.monotonic() >= self.submission_deadline - 1e-3:
            return (f"the submission used up its {self.limits.submission:g} s of wall-clock "
                    f"time in {what}")
        return (f"your code was stopped after {self.limits.timeout:g} s of wall-clock time in "
                f"{what} (an endless loop, or far too slow)")

    def _died(self, what: str, reason: str | None = None) -> WorkerDied:
        status = None if reason else self.worker.wait(2)
        status = self.worker.kill() if status is None else status
        self.output += self.worker.output
        if reason is None and status is not None and (status < 0 or status > 128):
            number = -status if status < 0 else status - 128
            name = signal.Signals(number).name if number in signal.valid_signals() else number
            reason = (f"your code's process was killed by signal {name} in {what} (over its CPU "
                      f"time of {self.limits.cpu} s or memory of {self.limits.memory} MB, or it "
                      "killed itself)")
        elif reason is None:
            reason = f"your code ended its Python process (exit status {status}) in {what}"
        self.death, self.worker = reason, None
        return WorkerDied(reason)

    def start(self) -> None:
        """Hand the worker its start message: the guarded functions; wait until it is ready."""
        self._exchange({"op": "start", "guarded": self.guarded}, "starting your kernel",
                       seconds=max(self.limits.timeout, 60.0))

    def _ensure_running(self) -> None:
        if self.worker is not None:
            return
        if self.restarts >= self.limits.restarts:
            raise WorkerDied(f"{self.death}; not restarted again (too many restarts)")
        self.restarts += 1
        # a fresh interpreter: this process holds the tests now (without root nothing is
        # isolated anyway, and the interpreter may not be startable by this user: fork)
        self.worker = spawn(self.spec, fresh=self.spec.plan is not None)
        self.generation += 1
        self.start()
        for message in self.replay:
            self._exchange(message, f"restoring cell {message['cell']!r}",
                           seconds=self.limits.timeout)
        self.begin_cell()                       # the restart is not charged to the cell

    def close(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(Exception):
                self.worker.channel.send_pickle({"op": "quit"}, time.monotonic() + 1)
            self.worker.wait(1)
            self.worker.kill()
            self.output += self.worker.output
            self.worker = None

    def _pickle_reference(self, obj):
        if isinstance(obj, Remote):
            reference, generation = object.__getattribute__(obj, "_where")[1:]
            if generation != self.generation and reference[0] == "handle":
                raise StudentError("an object your code returned was lost when your code was "
                                   "restarted after a crash")
            return reference
        if isinstance(obj, types.FunctionType) and not importable(obj):
            self.callbacks[len(self.callbacks) + 1] = obj
            return ("callback", len(self.callbacks))
        return None

    def _exchange(self, message: dict, what: str, *, seconds: float | None = None):
        """Send one message, serve callbacks until the answer; the answer (header, arrays).

        The deadline is the current cell's, or ``seconds`` from now; never past the
        submission's."""
        if message.get("op") != "start":
            self._ensure_running()
        deadline = min(self.cell_deadline if seconds is None else time.monotonic() + seconds,
                       self.submission_deadline)
        try:
            self.worker.channel.send_pickle(message, deadline, self._pickle_reference)
            while True:
                _, (header, payloads) = self.worker.channel.receive(deadline)
                if header.get("op") not in ("callback", "guard"):
                    return header, payloads
                self._callback(header, payloads, deadline)
        except (TimeoutError, Overrun):
            raise self._died(what, self._timed_out(what)) from None
        except (ProtocolError, OSError, EOFError) as error:
            if isinstance(error, ProtocolError) and "closed" not in str(error):
                raise self._died(what, f"your code sent the grader a malformed answer in {what}"
                                       f" ({error})") from None
            raise self._died(what) from None

    def _callback(self, header: dict, payloads: list, deadline: float) -> None:
        if header["op"] == "guard":
            reply = {"ok": True, "value": grading.active_disabled().get(str(header["name"]))}
        else:
            try:
                function = self.callbacks[int(header["id"])]
                args, kwargs = decode(header["value"], payloads, self.make_handle)
                with alarm(max(1e-3, deadline - time.monotonic()), "a test's function"):
                    value = function(*args, **dict(kwargs))
                buffer = io.BytesIO()
                pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
                if buffer.tell() > self.limits.answer_mb * 2**20:
                    raise ValueError(f"a result of more than {self.limits.answer_mb} MB")
                reply = {"ok": True, "value": value}
            except Overrun:
                raise
            except Exception as error:  # noqa: BLE001  (reported to the student's code)
                reply = {"ok": False, "error": f"{type(error).__name__}: {error}"[:2000]}
        self.worker.channel.send_pickle(reply, deadline, self._pickle_reference)

    def make_handle(self, number: int, type_name: str):
        return Remote(self, ("handle", number), type_name)

    def execute(self, code: str, cell: str) -> str | None:
        """Run a cell's code in the worker (remembered for replay); its error, or None."""
        message = {"op": "exec", "cell": cell, "code": code}
        try:
            header, _ = self._exchange(message, f"cell {cell!r}")
        except WorkerDied as died:
            return str(died)
        self.replay.append(message)
        error = header.get("error") or {}
        return f"{error.get('type')}: {error.get('message')}" if not header.get("ok") else None

    def request(self, message: dict, what: str):
        """A request on a student object; its decoded value, or :class:`StudentError`."""
        overrides = {name: value for name, value in
                     grading.active_replacements(self.namespace).items()
                     if name in self.student_names}
        hidden = [name for name in self.bound if name not in self.namespace]   # a test's del
        inputs = autograd.requested(message)          # tensors whose gradients come back
        header, payloads = self._exchange({**message, "overrides": overrides, "hidden": hidden,
                                           "grad": len(inputs)}, what)
        try:
            if message.get("op") == "call" and header.get("changed"):   # also on an error
                self.notes += [n for n in inplace.copy_back(message, header["changed"],
                                                            payloads, self.make_handle)
                               if n not in self.notes]
            value = decode(header.get("value"), payloads, self.make_handle,
                           functools.partial(autograd.rebuild, inputs=inputs)) \
                if header.get("ok") else None
        except ProtocolError as error:
            raise StudentError(f"your code gave the grader a value it cannot read ({error})") \
                from None
        if not header.get("ok"):
            error = header.get("error") or {}
            raise _student_error(str(error.get("type", "Error")))(
                f"{error.get('type', 'Error')}: {error.get('message', '')}\n"
                f"{error.get('traceback', '')}")
        return value


class Remote:
    """A student object living in the worker: a function they wrote, or a non-plain result."""

    def __init__(self, session: Session, reference: tuple, type_name: str = "function"):
        object.__setattr__(self, "_where", (session, reference, session.generation))
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op: str, **fields):
        session, reference, _ = object.__getattribute__(self, "_where")
        return session.request({"op": op, "target": reference, **fields},
                               f"a call of {str(reference[1])!r}")

    def __call__(self, *args, **kwargs):
        return self._ask("call", args=args, kwargs=kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __getitem__(self, key):
        return self._ask("getitem", key=key)

    def __len__(self):
        return self._ask("len")

    def __iter__(self):
        return iter(self._ask("list"))

    def __repr__(self):
        return f"<student {object.__getattribute__(self, '_type')}>"
