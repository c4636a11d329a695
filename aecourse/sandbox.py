"""The student side of ``aecourse grade``: a worker process that runs one submission's code.

The grader (``aecourse.autograde``) starts one worker per submission, confined by the operating
system (no network, hidden course files, its own user, resource limits; see ``autograde``), and
talks to it over two pipes:

* grader -> worker: requests pickled by the grader (unpickling *trusted* data is safe): run this
  cell's code, call this function with these arguments, give me this attribute, ...
* worker -> grader: answers as **plain data only**: a JSON header plus ``.npy`` payloads written
  and read with ``allow_pickle=False``. Numbers, strings, bools, None, NumPy arrays, torch tensors
  and lists/tuples/dicts of them travel by value; any other object stays here and the grader gets
  a *handle* (an id) it can call or ask for attributes.

So whatever the student's code does to this process (patched builtins, trace hooks, redefined
assertion helpers), the grader only ever receives numbers and arrays, and decides the verdict
itself. The wire format (:func:`encode`, :func:`decode`, the framing) lives here because both
sides use it.

Chapter: instructor guide (grading a whole class).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import traceback
from contextlib import ExitStack

import numpy as np

__all__ = ["encode", "decode", "send_data", "recv_data", "send_request", "recv_request",
           "ProtocolError", "main"]

MAX_HEADER = 16 * 2**20          # bytes of JSON per answer
MAX_PAYLOAD = 512 * 2**20        # bytes of arrays per answer
MAX_DEPTH = 20                   # nesting of lists/dicts in one answer


class ProtocolError(RuntimeError):
    """The other side sent something that is not a valid message (or died)."""


# ---------------------------------------------------------------- framing
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ProtocolError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send_request(fd: int, message: dict) -> None:
    """Grader -> worker: a pickled dict (only ever sent in this direction)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, struct.pack("<Q", len(data)) + data)


def recv_request(fd: int, persistent_load=None) -> dict:
    """Worker side of :func:`send_request`."""
    (n,) = struct.unpack("<Q", _read_exact(fd, 8))
    unpickler = pickle.Unpickler(io.BytesIO(_read_exact(fd, n)))
    if persistent_load is not None:
        unpickler.persistent_load = persistent_load
    return unpickler.load()


def send_data(fd: int, header: dict, payloads: list) -> None:
    """Worker -> grader: JSON header and ``.npy`` payloads (no pickle anywhere)."""
    head = json.dumps({**header, "n_payloads": len(payloads)}).encode()
    parts = [struct.pack("<I", len(head)), head]
    for array in payloads:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        parts += [struct.pack("<Q", buffer.tell()), buffer.getvalue()]
    _write_all(fd, b"".join(parts))


def recv_data(fd: int, read=_read_exact) -> tuple[dict, list]:
    """Grader side of :func:`send_data`; checks sizes before reading anything big."""
    (n,) = struct.unpack("<I", read(fd, 4))
    if n > MAX_HEADER:
        raise ProtocolError(f"answer header of {n} bytes (limit {MAX_HEADER})")
    try:
        header = json.loads(read(fd, n))
        count = int(header["n_payloads"])
    except (ValueError, KeyError, TypeError) as error:
        raise ProtocolError(f"malformed answer header ({error})") from None
    payloads, total = [], 0
    for _ in range(count):
        (size,) = struct.unpack("<Q", read(fd, 8))
        total += size
        if total > MAX_PAYLOAD:
            raise ProtocolError(f"answer of more than {MAX_PAYLOAD} bytes of arrays")
        try:
            payloads.append(np.load(io.BytesIO(read(fd, size)), allow_pickle=False))
        except ValueError as error:
            raise ProtocolError(f"malformed array in an answer ({error})") from None
    if not isinstance(header, dict):
        raise ProtocolError("answer header is not a JSON object")
    return header, payloads


# ---------------------------------------------------------------- plain data <-> JSON + arrays
def encode(value, payloads: list, keep_handle, depth: int = 0):
    """``value`` as a JSON-able tree; arrays go to ``payloads``; other objects to ``keep_handle``.

    Runs in the worker. Exact types are tested, and subclasses are converted to their base type
    here, so what the grader rebuilds is always a genuine ``float``, ``list``, ``ndarray``, ...
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"data nested more than {MAX_DEPTH} levels deep")
    if value is None or type(value) in (bool, str):
        return {"t": "v", "v": value}
    if isinstance(value, bool):
        return {"t": "v", "v": bool(value)}
    if isinstance(value, int):
        return {"t": "v", "v": int(value)}
    if isinstance(value, float):
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            return {"t": "f", "v": repr(value)}
        return {"t": "v", "v": value}
    if isinstance(value, complex):
        return {"t": "c", "re": float(value.real), "im": float(value.imag)}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        array = array.numpy() if array.dtype != torch.bfloat16 else array.float().numpy()
        payloads.append(np.array(array, order="C"))
        return {"t": "torch", "i": len(payloads) - 1}
    if isinstance(value, (np.ndarray, np.generic)) and not np.asarray(value).dtype.hasobject:
        payloads.append(np.array(value, order="C"))
        return {"t": "nd" if isinstance(value, np.ndarray) else "np", "i": len(payloads) - 1}
    if isinstance(value, (list, tuple)):
        items = [encode(v, payloads, keep_handle, depth + 1) for v in value]
        return {"t": "list" if isinstance(value, list) else "tuple", "v": items}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[encode(k, payloads, keep_handle, depth + 1),
                                    encode(v, payloads, keep_handle, depth + 1)]
                                   for k, v in value.items()]}
    return keep_handle(value)


def decode(tree, payloads: list, make_handle):
    """Grader side of :func:`encode`: rebuild genuine Python/NumPy/torch values."""
    kind = tree["t"]
    if kind == "v":
        value = tree["v"]
        if value is None or type(value) in (bool, int, float, str):
            return value
        raise ProtocolError(f"unexpected JSON value of type {type(value).__name__}")
    if kind == "f":
        return float(str(tree["v"]))
    if kind == "c":
        return complex(float(tree["re"]), float(tree["im"]))
    if kind in ("nd", "np", "torch"):
        array = payloads[int(tree["i"])]
        if kind == "np":
            return array[()]
        if kind == "torch":
            import torch
            return torch.from_numpy(np.array(array))
        return array
    if kind in ("list", "tuple"):
        items = [decode(v, payloads, make_handle) for v in tree["v"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {decode(k, payloads, make_handle): decode(v, payloads, make_handle)
                for k, v in tree["v"]}
    if kind == "handle":
        return make_handle(int(tree["id"]), bool(tree["callable"]), str(tree["type"])[:200])
    raise ProtocolError(f"unknown value kind {kind!r}")


# ---------------------------------------------------------------- the worker
class _Callback:
    """A grader-side function (e.g. a loss defined in a test) that student code may call."""

    def __init__(self, worker, number: int):
        self._worker, self._number = worker, number

    def __call__(self, *args, **kwargs):
        return self._worker.callback(self._number, args, kwargs)


class Worker:
    """Serve the grader's requests until it says ``quit`` (or closes the channel)."""

    def __init__(self, request_fd: int, answer_fd: int):
        self.request_fd, self.answer_fd = request_fd, answer_fd
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        self.handles: dict[int, object] = {}

    # -- values in and out
    def _keep(self, value):
        number = len(self.handles) + 1
        self.handles[number] = value
        return {"t": "handle", "id": number, "callable": callable(value),
                "type": type(value).__name__}

    def _load_reference(self, pid):
        kind, key = pid
        if kind == "handle":
            return self.handles[key]
        if kind == "global":
            return self.namespace[key]
        if kind == "callback":
            return _Callback(self, key)
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")

    def _answer(self, header: dict, value=None, with_value: bool = False) -> None:
        payloads: list = []
        if with_value:
            try:
                header["value"] = encode(value, payloads, self._keep)
            except Exception as error:  # noqa: BLE001  (student objects may raise anything)
                header, payloads = _error_header(error, "could not send the result back"), []
        send_data(self.answer_fd, header, payloads)

    def callback(self, number: int, args, kwargs):
        payloads: list = []
        tree = encode([list(args), kwargs], payloads, self._keep)
        send_data(self.answer_fd, {"op": "callback", "id": number, "args": tree}, payloads)
        reply = recv_request(self.request_fd, self._load_reference)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "the grader's function failed"))
        return reply["value"]

    # -- requests
    def _target(self, reference):
        kind, key = reference
        return self.namespace[key] if kind == "global" else self.handles[key]

    def handle(self, request: dict) -> bool:
        op = request["op"]
        if op == "quit":
            return False
        if op == "exec":
            self._exec(request)
            return True
        try:
            with ExitStack() as stack:
                if request.get("overrides"):
                    from aecourse.grading import replaced
                    stack.enter_context(replaced(self.namespace, **request["overrides"]))
                for name, graded in request.get("disabled", []):
                    from aecourse.grading import disabled
                    try:
                        stack.enter_context(disabled(name, graded=graded))
                    except (ValueError, TypeError):       # not importable here: nothing to do
                        pass
                target = self._target(request["target"])
                if op == "call":
                    value = target(*request["args"], **request["kwargs"])
                elif op == "getattr":
                    value = getattr(target, request["name"])
                elif op == "getitem":
                    value = target[request["key"]]
                elif op == "len":
                    value = len(target)
                elif op == "list":
                    value = list(target)
                elif op == "repr":
                    value = repr(target)[:2000]
                else:
                    raise ValueError(f"unknown request {op!r}")
            self._answer({"ok": True}, value, with_value=True)
        except BaseException as error:  # noqa: BLE001  (includes SystemExit from student code)
            self._answer(_error_header(error))
        return True

    def _exec(self, request: dict) -> None:
        """Run one cell's code in the student's namespace; report the requested globals."""
        header: dict = {"ok": True}
        try:
            code = compile(request["code"], f"<cell {request['cell']}>", "exec")
            exec(code, self.namespace)  # noqa: S102  (running student code is the job)
        except BaseException as error:  # noqa: BLE001  (includes SystemExit)
            header = _error_header(error)
        try:
            header["names"], payloads = self._describe(request.get("names", []))
        except Exception as error:  # noqa: BLE001
            header, payloads = _error_header(error, "could not send your globals back"), []
            header["names"] = {}
        send_data(self.answer_fd, header, payloads)

    def _describe(self, names):
        """For each requested global: absent, callable, or its value (plain data or handle)."""
        out = {}
        for name in names:
            if name not in self.namespace:
                continue
            value = self.namespace[name]
            out[name] = {"t": "callable"} if callable(value) else None
        payloads: list = []
        for name, kind in out.items():
            if kind is None:
                out[name] = encode(self.namespace[name], payloads, self._keep)
        return out, payloads

    def serve(self) -> None:
        while True:
            request = recv_request(self.request_fd, self._load_reference)
            if not self.handle(request):
                return


def _error_header(error: BaseException, context: str = "") -> dict:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    text = "".join(lines)[-8000:]
    message = f"{context}: {error}" if context else str(error)
    return {"ok": False, "error": {"type": type(error).__name__[:100],
                                   "message": message[:4000], "traceback": text}}


def main(argv=None) -> int:
    """``python -m aecourse.sandbox REQUEST_FD ANSWER_FD``: serve one submission.

    The channel descriptors are moved away from 0/1/2 first, so student output (which the
    grader collects, capped, on this process's stdout/stderr) can never be mistaken for an answer.
    """
    argv = sys.argv[1:] if argv is None else argv
    request_fd, answer_fd = (os.dup(int(fd)) for fd in argv[:2])
    for fd in map(int, argv[:2]):
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.environ.pop("AECOURSE_GRADER", None)
    worker = Worker(request_fd, answer_fd)
    try:
        worker.serve()
    except ProtocolError:
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
