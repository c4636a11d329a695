"""Timings of aecourse.train.fit and aecourse.scratch, printed as one table.

Run from the repository root::

    .venv/bin/python benchmarks/bench_library.py [--threads N] [--repeats R]

(a) Defaults, time to a target: on the bundled digits (80/20 split), ``fit`` on a
    64-32-64 tanh/linear autoencoder (Adam lr 0.02, batch 64) versus scikit-learn's
    ``MLPRegressor(hidden_layer_sizes=(32,))`` at ITS defaults (ReLU, Adam lr 0.001,
    batch 200, L2 1e-4, stops when the loss stalls), fitted with X as its own target.
    The target is the test MSE the MLPRegressor reaches; ``fit`` is timed for the
    epochs it needs to reach it. This compares two recipes, not two implementations.
(b) Matched settings, per epoch: the same architecture, activation (tanh, identity
    output), optimizer (Adam), learning rate, batch size, no L2 penalty and the same
    number of epochs in both; the time of one epoch (total / epochs). On the digits
    (64-32-64, batch 64, 30 epochs) and on the 5,000-image MNIST subset
    (784-32-784, batch 64 and 256, 5 epochs). This compares the implementations.
    Goal: ``fit`` <= 1.0x MLPRegressor on MNIST.
(c) ``fit`` versus a bare hand-written PyTorch loop (shuffle, zero_grad, backward,
    step; ``nn.Linear`` layers, Adam at torch's defaults) on the same data, initial
    weights and epochs, per epoch. ``fit`` also evaluates the loss on all of X after
    every epoch (its history); the bare loop does not. Goal: <= 1.05x.
(d) One SGD epoch of the NumPy scratch autoencoder (``scratch.loss_and_grads`` and an
    update per minibatch) versus one PyTorch CPU epoch of the same model (float64).

The machine may be busy: every comparison runs its contenders interleaved (A, B, A,
B, ...) after one untimed warm-up each, and reports the MINIMUM of the repeats
(time.perf_counter). The torch thread count is left at its default unless
``--threads`` is given; the Makefile sets one BLAS/OpenMP thread per process. The
machine line includes the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import mean_squared_error  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402

from aecourse.data import load_digits, load_mnist  # noqa: E402
from aecourse.models import Autoencoder  # noqa: E402
from aecourse.train import fit  # noqa: E402

N_HIDDEN, LR, SEED = 32, 2e-2, 0
G, F = "tanh", "linear"  # a linear decoder, like MLPRegressor's identity output


def interleaved(funs: dict, repeats: int) -> dict:
    """Minimum wall time of each function over ``repeats`` interleaved rounds (after a warm-up)."""
    for fun in funs.values():
        fun()
    times = {name: [] for name in funs}
    for _ in range(repeats):
        for name, fun in funs.items():
            start = time.perf_counter()
            fun()
            times[name].append(time.perf_counter() - start)
    return {name: min(seconds) for name, seconds in times.items()}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}{load}")


def bare_loop(model, X, *, epochs, optimizer, lr, batch_size, seed=SEED):
    """The hand-written PyTorch tutorial loop; returns the last minibatch loss."""
    X = torch.as_tensor(X, dtype=next(model.parameters()).dtype)
    opt = optimizer(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=generator)
        for i in range(0, len(X), batch_size):
            X_batch = X[order[i:i + batch_size]]
            opt.zero_grad()
            loss = ((model(X_batch) - X_batch) ** 2).sum() / len(X_batch)
            loss.backward()
            opt.step()
    return loss.item()


def as_sequential(ae: Autoencoder) -> torch.nn.Sequential:
    """The same autoencoder as plain torch.nn layers with the same initial weights."""
    n, d = ae.n_features, ae.n_hidden
    encoder, decoder = torch.nn.Linear(n, d), torch.nn.Linear(d, n)
    with torch.no_grad():
        for layer, weight, bias in ((encoder, ae.W, ae.b), (decoder, ae.W_star, ae.c)):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    activations = {"sigmoid": torch.nn.Sigmoid(), "tanh": torch.nn.Tanh(),
                   "relu": torch.nn.ReLU(), "linear": torch.nn.Identity()}
    return torch.nn.Sequential(encoder, activations[ae.g_name], decoder, activations[ae.f_name])


def matched_mlp(batch_size: int, epochs: int, lr: float = LR) -> MLPRegressor:
    """An MLPRegressor with fit's settings: tanh, Adam, no L2, fixed epochs, no early stop."""
    return MLPRegressor(hidden_layer_sizes=(N_HIDDEN,), activation="tanh", solver="adam",
                        alpha=0.0, batch_size=batch_size, learning_rate_init=lr,
                        max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                        shuffle=True, random_state=SEED)


def run_mlp(make, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make().fit(X, X)


def run_fit(X, *, epochs, batch_size, lr=LR, epoch_loss="full"):
    model = Autoencoder(X.shape[1], N_HIDDEN, g=G, f=F, random_state=SEED)
    fit(model, X, epochs=epochs, lr=lr, batch_size=batch_size, random_state=SEED,
        epoch_loss=epoch_loss)
    return model


def fit_contenders(X, *, epochs, batch_size) -> dict:
    """fit with its default per-epoch loss on all of X, and with the free minibatch mean."""
    return {f"fit ({kind})": lambda kind=kind: run_fit(X, epochs=epochs, batch_size=batch_size,
                                                       epoch_loss=kind)
            for kind in ("full", "minibatch")}


def bench_defaults(X_train, X_test, repeats):
    """Row (a): seconds to the default MLPRegressor's test MSE."""
    mlp = run_mlp(lambda: MLPRegressor(hidden_layer_sizes=(N_HIDDEN,), random_state=SEED),
                  X_train)
    target = mean_squared_error(X_test, mlp.predict(X_test))  # per pixel
    n = X_train.shape[1]
    probe = fit(Autoencoder(n, N_HIDDEN, g=G, f=F, random_state=SEED), X_train, X_val=X_test,
                epochs=40, lr=LR, batch_size=64, random_state=SEED)
    per_pixel = np.array(probe["val_loss"]) / n  # fit's loss sums over the n pixels
    if not (per_pixel <= target).any():
        return None
    epochs = int(np.argmax(per_pixel <= target)) + 1
    t = interleaved({
        "fit": lambda: run_fit(X_train, epochs=epochs, batch_size=64),
        "mlp": lambda: run_mlp(lambda: MLPRegressor(hidden_layer_sizes=(N_HIDDEN,),
                                                    random_state=SEED), X_train),
    }, repeats)
    label = (f"(a) defaults, to test MSE {target:.4f}: fit ({epochs} ep, Adam 0.02, batch 64) "
             f"vs MLPRegressor() ({mlp.n_iter_} it)")
    return label, t["fit"], t["mlp"], "-"


def bench_matched(X, label, *, batch_size, epochs, repeats):
    """Rows (b): per-epoch time of fit and MLPRegressor with the same settings."""
    t = interleaved(fit_contenders(X, epochs=epochs, batch_size=batch_size)
                    | {"mlp": lambda: run_mlp(lambda: matched_mlp(batch_size, epochs), X)},
                    repeats)
    return [(f"(b) {label}, batch {batch_size}, {epochs} ep: {name} vs MLPRegressor, per epoch",
             t[name] / epochs, t["mlp"] / epochs, "<= 1.0x") for name in t if name != "mlp"]


def bench_bare(X, label, *, batch_size, epochs, repeats):
    """Row (c): per-epoch time of fit and the bare loop, same model, weights, data, epochs."""
    n = X.shape[1]

    def with_bare_loop():
        model = as_sequential(Autoencoder(n, N_HIDDEN, g=G, f=F, random_state=SEED))
        bare_loop(model, X, epochs=epochs, optimizer=torch.optim.Adam, lr=LR,
                  batch_size=batch_size)

    t = interleaved(fit_contenders(X, epochs=epochs, batch_size=batch_size)
                    | {"bare": with_bare_loop}, repeats)
    return [(f"(c) {label}, batch {batch_size}, {epochs} ep: {name} vs bare PyTorch loop, "
             f"per epoch", t[name] / epochs, t["bare"] / epochs, "<= 1.05x")
            for name in t if name != "bare"]


def bench_scratch_epoch(X_train, repeats, lr=0.1, batch_size=64):
    """Row (d): one SGD epoch of NumPy scratch vs PyTorch (float64, sigmoid/sigmoid)."""
    from aecourse import scratch

    n = X_train.shape[1]
    X = X_train.astype(np.float64)

    def numpy_epoch():
        params = scratch.init_params(n, N_HIDDEN, random_state=SEED)
        order = np.random.default_rng(SEED).permutation(len(X))
        for i in range(0, len(X), batch_size):
            _, grads = scratch.loss_and_grads(params, X[order[i:i + batch_size]], g="sigmoid",
                                              f="sigmoid")
            for name in params:
                params[name] -= lr * grads[name]

    def torch_epoch():
        model = Autoencoder(n, N_HIDDEN, g="sigmoid", f="sigmoid", random_state=SEED).double()
        bare_loop(model, X, epochs=1, optimizer=torch.optim.SGD, lr=lr, batch_size=batch_size)

    t = interleaved({"numpy": numpy_epoch, "torch": torch_epoch}, repeats)
    return ("(d) digits, one SGD epoch, float64 sigmoid/sigmoid: scratch vs torch", t["numpy"],
            t["torch"], "-")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (minimum)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    X, _ = load_digits()
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=SEED)
    X_mnist, _ = load_mnist()
    r = args.repeats

    rows = [bench_defaults(X_train, X_test, r)]
    for bench in (bench_matched, bench_bare):
        rows += bench(X_train, "digits 64-32-64", batch_size=64, epochs=30, repeats=r)
        for batch_size in (64, 256):
            rows += bench(X_mnist, "MNIST 784-32-784", batch_size=batch_size, epochs=5, repeats=r)
    rows.append(bench_scratch_epoch(X_train, r))
    rows = [(label, f"{a:.4f} s", f"{b:.4f} s", f"{a / b:.2f}x", goal)
            for label, a, b, goal in filter(None, rows)]
    print(f"aecourse benchmarks: digits ({len(X_train)} train / {len(X_test)} test), MNIST subset "
          f"({len(X_mnist)}), {G}/{F} autoencoders with {N_HIDDEN} hidden units, Adam lr {LR}; "
          f"minimum of {r} interleaved repeats")
    print(f"machine: {machine()}")
    header = ("benchmark", "aecourse", "reference", "ratio", "goal")
    widths = [max(len(str(row[k])) for row in [header, *rows]) for k in range(5)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
