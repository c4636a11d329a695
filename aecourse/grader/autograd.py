"""Gradients across the process boundary: a student's tensor result keeps its derivatives.

Arguments and results travel by value (:mod:`aecourse.grader.protocol`), so a tensor that a
student's function returns would reach the test without its autograd graph. Under plain
nbgrader a test may pass tensors with ``requires_grad=True``, call ``.backward()`` on the result
and read ``.grad``; for the same verdict here:

1. the grader tells the worker how many tensors among a call's arguments require a gradient
   (:func:`inputs`: one fixed order, each tensor once); they reach the worker as leaves that
   require a gradient, and the worker finds them by the same walk;
2. the worker runs the student's function and, for each tensor of the result, computes its
   Jacobian with respect to each input (:class:`Jacobians`, one ``torch.autograd.grad`` per
   entry of the result): at most :data:`MAX_ENTRIES` numbers per answer; beyond that, or if the
   student's graph fails, the tensor carries the reason instead;
3. the grader checks every Jacobian's shape and dtype (a malformed one is that call's failure)
   and wraps the tensor in a ``torch.autograd.Function`` whose backward is ``grad_output @ J``
   (:func:`rebuild`); a refused one raises its reason in the test's ``.backward()``.

A result with no gradient (no ``grad_fn``) comes back with ``requires_grad=False``, exactly as
in one kernel, so a test's ``.backward()`` raises the same error. The worker only sees argument
values, never a test's code. The Jacobians are constants: second derivatives through a
student's function are refused with a reason, not silently zero.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from aecourse.grader.protocol import MAX_DEPTH, ProtocolError

__all__ = ["inputs", "requested", "Jacobians", "rebuild", "MAX_ENTRIES"]

MAX_ENTRIES = 10**5         # Jacobian entries per answer (8 bytes each)


def inputs(args, kwargs: dict) -> list:
    """The tensors among a call's arguments (also inside lists, tuples, dict values) that
    require a gradient, each once, in the order both sides find them."""
    torch = sys.modules.get("torch")
    found: list = []
    if torch is None:
        return found

    def walk(value, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            if value.requires_grad and not any(value is x for x in found):
                found.append(value)
        elif depth < MAX_DEPTH and type(value) in (list, tuple):
            for item in value:
                walk(item, depth + 1)
        elif depth < MAX_DEPTH and type(value) is dict:
            for item in value.values():
                walk(item, depth + 1)

    walk([*args, *kwargs.values()], 0)
    return found


def requested(message: dict) -> list:
    """Grader side: the :func:`inputs` of a call request, if torch records gradients now."""
    torch = sys.modules.get("torch")
    if message.get("op") != "call" or torch is None or not torch.is_grad_enabled():
        return []
    return inputs(message["args"], message["kwargs"])


class Jacobians:
    """Worker side: the hook of :func:`~aecourse.grader.protocol.encode` that adds to each
    tensor of a result (shape ``(m, ...)``, ``n`` entries) its Jacobians ``(n, x.numel())``
    with respect to each input ``x`` (float64 arrays; ``None`` where it does not depend on x).
    """

    def __init__(self, inputs: list, limit: int = MAX_ENTRIES):
        self.inputs, self.left = inputs, limit

    def __call__(self, tensor, payloads: list) -> dict:
        if not tensor.requires_grad:
            return {}                                    # no gradient: as in one kernel
        cost = tensor.numel() * sum(x.numel() for x in self.inputs)
        if cost > self.left:
            return {"g": {"refused": f"the grader carries at most {MAX_ENTRIES} Jacobian "
                                     "entries of a call's results across to the test; this "
                                     f"result needs {cost} (use smaller tensors in the test)"}}
        self.left -= cost
        try:
            rows = self._rows(tensor)
        except Exception as error:  # noqa: BLE001  (the student's graph may raise anything)
            return {"g": {"refused": f"computing the gradient of your function's result failed "
                                     f"({type(error).__name__}: {str(error)[:1000]})"}}
        if all(row is None for row in rows):
            return {"g": "leaf"}                # requires a gradient, depends on no input
        out = []
        for row in rows:
            if row is not None:
                payloads.append(np.ascontiguousarray(row, dtype=np.float64))
            out.append(None if row is None else len(payloads) - 1)
        return {"g": out}

    def _rows(self, tensor) -> list:
        """Per input, its Jacobian as an ``(n, x.numel())`` array, or None."""
        import torch
        if tensor.is_complex() or any(x.is_complex() for x in self.inputs):
            raise TypeError("complex tensors: the grader carries real gradients only")
        with torch.enable_grad():
            flat = tensor.reshape(-1)
            per_entry = [torch.autograd.grad(flat[i], self.inputs, retain_graph=True,
                                             allow_unused=True) for i in range(flat.numel())]
        if not per_entry:                                # an empty result
            return [np.zeros((0, x.numel())) for x in self.inputs]
        rows = []
        for k, x in enumerate(self.inputs):
            if all(g[k] is None for g in per_entry):
                rows.append(None)
                continue
            rows.append(np.stack([np.zeros(x.numel()) if g[k] is None else
                                  g[k].detach().double().cpu().reshape(-1).numpy()
                                  for g in per_entry]))
        return rows


def rebuild(tensor, node: dict, payloads: list, inputs: list):
    """Grader side: ``tensor`` (decoded from ``node``) with the gradient the worker sent, or
    :class:`ProtocolError` if that gradient is malformed."""
    grad = node.get("g")
    if not inputs or grad is None:
        return tensor
    if not tensor.is_floating_point():
        raise ProtocolError(f"a gradient for a tensor of {tensor.dtype}")
    if grad == "leaf":
        return tensor.requires_grad_()
    if type(grad) is dict:
        return _function().apply(tensor, str(grad.get("refused"))[:2000], *inputs)
    if type(grad) is not list or len(grad) != len(inputs):
        raise ProtocolError("gradients for another number of inputs than the call had")
    jacobians = []
    for index, x in zip(grad, inputs, strict=True):
        J = None if index is None else payloads[int(index)]
        if J is not None and (type(J) is not np.ndarray or J.dtype != np.float64
                              or J.shape != (tensor.numel(), x.numel())):
            raise ProtocolError(f"a Jacobian of shape {getattr(J, 'shape', None)} and dtype "
                                f"{getattr(J, 'dtype', None)}; expected "
                                f"{(tensor.numel(), x.numel())} float64")
        jacobians.append(J)
    return _function().apply(tensor, jacobians, *inputs)


SECOND = ("the grader carries first derivatives of a student's function across to the test, "
          "not second ones (create_graph=True through it)")


@functools.cache
def _function():
    """The ``torch.autograd.Function`` of :func:`rebuild` (torch imported only when used)."""
    import torch

    class Bridge(torch.autograd.Function):
        """``forward(value, jacobians, *inputs)`` -> value; backward: ``grad_output @ J``
        per input (``jacobians`` a list of arrays or None, or a reason to refuse)."""

        @staticmethod
        def forward(ctx, value, jacobians, *inputs):
            ctx.jacobians = jacobians
            ctx.save_for_backward(*inputs)
            return value.clone()

        @staticmethod
        def backward(ctx, grad_output):
            if isinstance(ctx.jacobians, str):
                raise RuntimeError(ctx.jacobians)
            inputs = ctx.saved_tensors
            row = grad_output.detach().double().reshape(1, -1)
            grads = [None if J is None else
                     (row @ torch.from_numpy(J)).reshape(x.shape).to(x.dtype)
                     for J, x in zip(ctx.jacobians, inputs, strict=True)]
            if torch.is_grad_enabled():     # create_graph=True: refused, not silently zero
                grads = [None if g is None else Bridge.apply(g, SECOND, *inputs) for g in grads]
            return (None, None, *grads)

    return Bridge
