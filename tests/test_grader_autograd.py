"""Gradients across the grader's process boundary (a real forked worker, without namespaces):
a test that passes tensors with ``requires_grad=True`` to a student's function, calls
``.backward()`` on the result and reads ``.grad`` sees what it would see in one kernel."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from aecourse.grader import autograd
from aecourse.grader.isolation import Limits
from aecourse.grader.process import Spawn, spawn
from aecourse.grader.protocol import ProtocolError, decode, encode
from aecourse.grader.session import Remote, Session, StudentError, WorkerDied

STUDENT = """
import torch

def reparameterize(mu, logvar, generator):
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps

def sampled(mu, logvar, generator):
    return torch.normal(mu, torch.exp(0.5 * logvar), generator=generator)

def nonlinear(W, x):
    return torch.tanh(x @ W.T).pow(3) / (1 + W.square().sum())

def pair(inputs, scale=None):
    a, b = inputs["a"], inputs["b"]
    return (a * b).sum(0), [torch.sin(a), scale * 2]

def ignores(a, b):
    return a.exp()

def detached(a):
    return a.detach() * 2

def fresh(a):
    return torch.ones(2, requires_grad=True)

def itself(a):
    return a

def custom(backward):
    class Custom(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return backward(grad)

    return Custom.apply

def broken(grad):
    raise ValueError('my backward is broken')

def endless(grad):
    while True:
        pass

broken_backward, endless_backward = custom(broken), custom(endless)
"""


def start(folder, timeout: float = 5):
    limits = Limits(timeout=timeout, submission=120, memory=2048, restarts=2)
    spec = Spawn(None, [], folder, None, limits)
    session = Session(spec, spawn(spec), guarded=[], deadline=time.monotonic() + 120)
    session.start()
    session.begin_cell()
    assert session.execute(STUDENT, "student") is None
    return session


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    session = start(tmp_path_factory.mktemp("work"))
    yield session
    session.close()


def leaves(value) -> list:
    """The tensors of a result (a tensor, or lists/tuples of them)."""
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in leaves(item)]
    return [value] if isinstance(value, torch.Tensor) else []


def both(session, name, make_args):
    """(result, the inputs' .grad) of ``name`` called here and in the worker, each on fresh
    arguments from ``make_args()``; ``.backward()`` on the sum of every tensor result."""
    local_namespace: dict = {}
    exec(STUDENT, local_namespace)  # noqa: S102  (the same source, run here as in one kernel)
    out = {}
    for where, function in [("local", local_namespace[name]),
                            ("grader", Remote(session, ("global", name)))]:
        args, kwargs, inputs = make_args()
        session.begin_cell()
        result = function(*args, **kwargs)
        tensors = [t for t in leaves(result) if t.requires_grad]
        if tensors:
            sum(t.sum() for t in tensors).backward()
        out[where] = result, [x.grad for x in inputs]
    return out["local"], out["grader"]


def tensor(*shape, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=shape)).requires_grad_()


def same_grads(local, grader):
    assert [g is None for g in local] == [g is None for g in grader]
    for ours, theirs in zip(grader, local, strict=True):
        if theirs is not None:
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            tight = theirs.dtype == torch.float64           # float32: torch's own tolerance
            torch.testing.assert_close(ours, theirs, rtol=1e-12 if tight else None,
                                       atol=1e-12 if tight else None)


def test_the_reparameterised_sample_has_its_gradient_in_mu_and_logvar(session):
    def make():
        mu, logvar = tensor(4, 3, seed=1), tensor(4, 3, seed=2)
        return (mu, logvar, torch.Generator().manual_seed(5)), {}, [mu, logvar]

    (h_local, local), (h, grader) = both(session, "reparameterize", make)
    assert h.requires_grad and torch.equal(h.detach(), h_local.detach())
    same_grads(local, grader)
    torch.testing.assert_close(grader[0], torch.ones(4, 3, dtype=torch.float64))


@pytest.mark.parametrize("name, make", [
    ("nonlinear", lambda: (lambda W, x: ((W, x), {}, [W, x]))(tensor(3, 5), tensor(7, 5, seed=1))),
    ("nonlinear", lambda: (lambda W, x: ((W, x), {}, [W]))(     # float32, one input a constant
        tensor(3, 5).detach().float().requires_grad_(), torch.ones(2, 5))),
    ("pair", lambda: (lambda a, b: (({"a": a, "b": b},), {"scale": torch.ones(2)}, [a, b]))(
        tensor(2, 3), tensor(2, 3, seed=1))),
    ("ignores", lambda: (lambda a, b: ((a, b), {}, [a, b]))(tensor(3), tensor(3, seed=1))),
    ("sampled", lambda: (lambda mu, lv: ((mu, lv, torch.Generator().manual_seed(3)), {},
                                         [mu, lv]))(tensor(2, 2), tensor(2, 2, seed=1))),
    ("itself", lambda: (lambda a: ((a,), {}, [a]))(tensor(2, 3))),
    ("fresh", lambda: (lambda a: ((a,), {}, [a]))(tensor(2))),
])
def test_gradients_equal_local_autograd(session, name, make):
    # nonlinear: two inputs, or float32 with one; pair: a dict of inputs, a tuple of outputs
    # (one with no grad); ignores: an output independent of one input (its .grad stays None);
    # sampled: torch.normal's gradient (zero, as in one kernel); itself/fresh: leaves as results.
    (result_local, local), (result, grader) = both(session, name, make)
    assert len(leaves(result)) == len(leaves(result_local))
    for ours, theirs in zip(leaves(result), leaves(result_local), strict=True):
        assert ours.requires_grad == theirs.requires_grad
        torch.testing.assert_close(ours.detach(), theirs.detach())
    same_grads(local, grader)


def test_a_result_without_gradient_fails_backward_as_in_one_kernel(session):
    a = tensor(3)
    h = Remote(session, ("global", "detached"))(a)
    assert not h.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        h.sum().backward()


def test_no_jacobians_are_computed_under_no_grad(session):
    with torch.no_grad():
        h = Remote(session, ("global", "reparameterize"))(tensor(2), tensor(2),
                                                          torch.Generator().manual_seed(0))
    assert not h.requires_grad


def test_too_large_a_jacobian_is_refused_with_its_reason_in_backward(session):
    mu, logvar = tensor(400), tensor(400, seed=1)       # 2 * 400 * 400 entries
    h = Remote(session, ("global", "reparameterize"))(mu, logvar, torch.Generator())
    assert h.shape == (400,) and h.requires_grad
    with pytest.raises(RuntimeError, match="at most 100000 Jacobian entries"):
        h.sum().backward()


def test_a_failing_backward_of_the_student_fails_the_tests_backward(session):
    a = tensor(3)
    h = Remote(session, ("global", "broken_backward"))(a)
    torch.testing.assert_close(h.detach(), 2 * a.detach())
    with pytest.raises(RuntimeError, match="my backward is broken"):
        h.sum().backward()


def test_a_backward_that_never_ends_stops_at_the_cell_deadline(tmp_path):
    session = start(tmp_path, timeout=1)
    session.begin_cell()
    started = time.monotonic()
    with pytest.raises(WorkerDied, match="stopped after 1 s"):
        Remote(session, ("global", "endless_backward"))(tensor(2))
    assert time.monotonic() - started < 3
    session.close()


def test_second_derivatives_are_refused_not_zero(session):
    mu = tensor(2)
    h = Remote(session, ("global", "nonlinear"))(mu.reshape(1, 2), tensor(1, 2, seed=1))
    (grad,) = torch.autograd.grad(h.sum(), mu, create_graph=True)
    with pytest.raises(RuntimeError, match="not second ones"):
        grad.sum().backward()


def test_a_worker_lying_about_its_jacobians_fails_only_that_call(tmp_path):
    session = start(tmp_path)
    assert session.execute(
        "import aecourse.grader.autograd as bridge\n"
        "import numpy as np\n"
        "def lie(tensor, payloads):\n"
        "    payloads.append(np.zeros((2, 2)))\n"
        "    return {'g': [len(payloads) - 1]}\n"
        "bridge.Jacobians.__call__ = lambda self, tensor, payloads: lie(tensor, payloads)\n",
        "liar") is None
    with pytest.raises(StudentError, match="cannot read.*Jacobian of shape"):
        Remote(session, ("global", "itself"))(tensor(3))
    assert Remote(session, ("global", "itself"))(torch.zeros(3)).tolist() == [0, 0, 0]
    session.close()


@pytest.mark.parametrize("node, payloads, expected", [
    ({"g": [0]}, [np.zeros((3, 2))], "Jacobian of shape"),          # shape
    ({"g": [0]}, [np.zeros((3, 3), np.float32)], "float64"),         # dtype
    ({"g": [0, None]}, [np.zeros((3, 3))], "number of inputs"),
    ({"g": [5]}, [], "IndexError"),
    ({"g": "all"}, [], "number of inputs"),
])
def test_malformed_gradients_are_protocol_errors(node, payloads, expected):
    payloads = [np.zeros(3), *payloads]
    tree = {"t": "torch", "i": 0, **{k: (v if not isinstance(v, list) else
                                         [i if i is None else i + 1 for i in v])
                                     for k, v in node.items()}}
    with pytest.raises(ProtocolError, match=expected):
        decode(tree, payloads, None, lambda t, n, p: autograd.rebuild(t, n, p, [tensor(3)]))


def test_the_jacobians_travel_in_the_answer_the_protocol_sends():
    a = tensor(2)
    payloads: list = []
    tree = encode((a * 3, a.detach()), payloads, None,
                  on_tensor=autograd.Jacobians(autograd.inputs((a,), {})))
    assert tree["v"][0]["g"] == [1] and "g" not in tree["v"][1]
    assert np.array_equal(payloads[1], 3 * np.eye(2))
