"""The one channel between the grader and a student's worker: framed, deadlined, size-limited.

Every message is a frame: 1 byte of kind, then its length (8 bytes), then the body.

* ``P`` (grader -> worker only): a pickle. Unpickling is only ever done by the worker, of data
  the trusted grader wrote.
* ``D`` (both ways, and the only kind the grader reads): plain data. The body is a JSON header
  (its length first, 4 bytes) and ``.npy`` arrays (each with its length, 8 bytes), read with
  ``allow_pickle=False``. Sizes are checked against the limits *before* anything is read.

:func:`encode` turns a value into that plain data (in the worker): numbers, strings, bools,
None, NumPy arrays and scalars, torch tensors, lists/tuples/dicts of them travel by value with
their exact base types; any other object stays in the worker and the grader gets a handle.
:func:`decode` rebuilds them (in the grader) and raises :class:`ProtocolError` on anything
malformed, so a lying worker can never crash the grader.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import select
import struct
import sys
import time

import numpy as np

__all__ = ["Channel", "ProtocolError", "encode", "decode", "importable", "MAX_HEADER",
           "MAX_ARRAYS"]

MAX_HEADER = 16 * 2**20          # bytes of JSON per message
MAX_ARRAYS = 64 * 2**20          # bytes of arrays per message (configurable per channel)
MAX_DEPTH = 20                   # nesting of lists/dicts
MAX_PICKLE = 1 << 30             # what the worker accepts from the grader


class ProtocolError(RuntimeError):
    """The other side sent something that is not a valid message, or closed the channel."""


class Channel:
    """Two pipe ends, with frames read and written under a deadline (``time.monotonic``)."""

    def __init__(self, read_fd: int, write_fd: int, *, max_header: int = MAX_HEADER,
                 max_arrays: int = MAX_ARRAYS):
        self.read_fd, self.write_fd = read_fd, write_fd
        self.max_header, self.max_arrays = max_header, max_arrays

    # -- bytes
    def _write(self, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        while view:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self.write_fd], [], left)[1]:
                    raise TimeoutError
            view = view[os.write(self.write_fd, view[:1 << 16]):]

    def _read(self, n: int, deadline: float | None) -> bytes:
        chunks, left = [], n
        while left:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.read_fd], [], [], wait)[0]:
                    raise TimeoutError
            chunk = os.read(self.read_fd, min(left, 1 << 20))
            if not chunk:
                raise ProtocolError("the other side closed the channel")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    # -- frames
    def send_pickle(self, message, deadline: float | None = None, persistent_id=None) -> None:
        """Grader -> worker: ``message`` pickled (``persistent_id`` turns objects into refs)."""
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        if persistent_id is not None:
            pickler.persistent_id = persistent_id
        pickler.dump(message)
        self._write(b"P" + struct.pack("<Q", buffer.tell()) + buffer.getvalue(), deadline)

    def send_data(self, header: dict, payloads: list, deadline: float | None = None) -> None:
        """A JSON header (ASCII: lone surrogates escaped) and ``.npy`` arrays."""
        head = json.dumps({**header, "n": len(payloads)}, ensure_ascii=True).encode()
        parts = [struct.pack("<I", len(head)), head]
        for array in payloads:
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            parts += [struct.pack("<Q", buffer.tell()), buffer.getvalue()]
        body = b"".join(parts)
        self._write(b"D" + struct.pack("<Q", len(body)) + body, deadline)

    def receive(self, deadline: float | None = None, *, allow_pickle: bool = False,
                persistent_load=None):
        """The next frame: ``("P", object)`` or ``("D", (header, arrays))``."""
        kind, size = struct.unpack("<cQ", self._read(9, deadline))
        if kind == b"P" and allow_pickle:
            if size > MAX_PICKLE:
                raise ProtocolError(f"request of {size} bytes")
            unpickler = pickle.Unpickler(io.BytesIO(self._read(size, deadline)))
            if persistent_load is not None:
                unpickler.persistent_load = persistent_load
            return "P", unpickler.load()
        if kind != b"D":
            raise ProtocolError(f"unexpected frame kind {kind!r}")
        if size > self.max_header + self.max_arrays + 4096:
            raise ProtocolError(f"answer of {size} bytes (limits: header {self.max_header}, "
                                f"arrays {self.max_arrays})")
        return "D", self._data(size, deadline)

    def _data(self, size: int, deadline: float | None):
        (n,) = struct.unpack("<I", self._read(4, deadline))
        if n > self.max_header or n + 4 > size:
            raise ProtocolError(f"answer header of {n} bytes (limit {self.max_header})")
        raw, used = self._read(n, deadline), 4 + n
        try:
            header = json.loads(raw.decode("utf-8", "replace"))
            count = int(header["n"])
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise ProtocolError(f"malformed answer header ({type(error).__name__})") from None
        if not isinstance(header, dict) or not 0 <= count <= 100_000:
            raise ProtocolError("answer header is not a JSON object with an array count")
        payloads, arrays = [], 0
        for _ in range(count):
            (length,) = struct.unpack("<Q", self._read(8, deadline))
            used, arrays = used + 8 + length, arrays + length
            if used > size or arrays > self.max_arrays:
                raise ProtocolError(f"answer of more than {self.max_arrays} bytes of arrays")
            try:
                payloads.append(np.load(io.BytesIO(self._read(length, deadline)),
                                        allow_pickle=False))
            except (ValueError, EOFError, OSError) as error:
                raise ProtocolError(f"malformed array in an answer ({error})") from None
        if used != size:
            raise ProtocolError("answer length does not match its parts")
        return header, payloads


def importable(function) -> bool:
    """Whether pickle sends ``function`` by reference (module + qualified name), not as a
    callback the worker calls back into the grader for."""
    target = sys.modules.get(getattr(function, "__module__", None) or "")
    for part in function.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is function


# ---------------------------------------------------------------- plain data <-> JSON + arrays
def encode(value, payloads: list, keep_handle, depth: int = 0, on_tensor=None):
    """``value`` as a JSON-able tree; arrays appended to ``payloads``; others to ``keep_handle``.

    Exact types are tested and subclasses converted to their base type, so what the grader
    rebuilds is always a genuine ``float``, ``list``, ``ndarray`` ... ``on_tensor(tensor,
    payloads)`` may add fields to a tensor's node (its gradient: :mod:`.autograd`).
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"data nested more than {MAX_DEPTH} levels deep")
    if value is None or type(value) in (bool, str):
        return {"t": "v", "v": value}
    if isinstance(value, bool):
        return {"t": "v", "v": bool(value)}
    if isinstance(value, int):
        return {"t": "i", "v": str(int(value))}
    if isinstance(value, float):
        return {"t": "f", "v": repr(float(value))}
    if isinstance(value, complex):
        return {"t": "c", "re": repr(float(value.real)), "im": repr(float(value.imag))}
    if isinstance(value, str):
        return {"t": "v", "v": str(value)}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        array = value.detach().cpu()
        array = array.float() if array.dtype == torch.bfloat16 else array
        payloads.append(np.array(array.numpy(), order="C"))
        node = {"t": "torch", "i": len(payloads) - 1}
        return {**node, **on_tensor(value, payloads)} if on_tensor is not None else node
    if isinstance(value, (np.ndarray, np.generic)) and not np.asarray(value).dtype.hasobject:
        payloads.append(np.array(value, order="C"))
        return {"t": "nd" if isinstance(value, np.ndarray) else "np", "i": len(payloads) - 1}
    if isinstance(value, (list, tuple)):
        items = [encode(v, payloads, keep_handle, depth + 1, on_tensor) for v in value]
        return {"t": "list" if isinstance(value, list) else "tuple", "v": items}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[encode(k, payloads, keep_handle, depth + 1),
                                    encode(v, payloads, keep_handle, depth + 1, on_tensor)]
                                   for k, v in value.items()]}
    return keep_handle(value)


def decode(tree, payloads: list, make_handle, on_tensor=None):
    """Grader side of :func:`encode`; :class:`ProtocolError` on anything malformed.
    ``on_tensor(tensor, node, payloads)`` may replace each tensor (:mod:`.autograd`)."""
    try:
        return _decode(tree, payloads, make_handle, 0, on_tensor)
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            OverflowError) as error:
        raise ProtocolError(f"malformed value from the worker ({type(error).__name__}: "
                            f"{str(error)[:200]})") from None


def _decode(tree, payloads, make_handle, depth, on_tensor):
    if depth > MAX_DEPTH + 1:
        raise ProtocolError("value nested too deep")
    kind = tree["t"]
    if kind == "v":
        value = tree["v"]
        if value is None or type(value) in (bool, str):
            return value
        raise ProtocolError(f"unexpected JSON value of type {type(value).__name__}")
    if kind == "i":
        return int(str(tree["v"])[:5000])
    if kind == "f":
        return float(str(tree["v"]))
    if kind == "c":
        return complex(float(str(tree["re"])), float(str(tree["im"])))
    if kind in ("nd", "np", "torch"):
        array = payloads[int(tree["i"])]
        if kind == "np":
            return array[()]
        if kind == "torch":
            import torch
            tensor = torch.from_numpy(np.array(array))
            return tensor if on_tensor is None else on_tensor(tensor, tree, payloads)
        return array
    if kind in ("list", "tuple"):
        items = [_decode(v, payloads, make_handle, depth + 1, on_tensor) for v in tree["v"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        out = {}
        for k, v in tree["v"]:
            key = _decode(k, payloads, make_handle, depth + 1, on_tensor)
            try:
                hash(key)
            except TypeError:
                raise ProtocolError(f"a dict key of type {type(key).__name__}") from None
            out[key] = _decode(v, payloads, make_handle, depth + 1, on_tensor)
        return out
    if kind == "handle":
        return make_handle(int(tree["id"]), str(tree["type"])[:200])
    raise ProtocolError(f"unknown value kind {str(kind)[:50]!r}")
