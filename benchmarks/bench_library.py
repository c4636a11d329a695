"""Timings of aecourse.train.fit and aecourse.scratch, printed as one table.

Run from the repository root::

    .venv/bin/python benchmarks/bench_library.py [--threads N]

(a) time to a target test error on the bundled digits (80/20 split): ``fit`` on a
    64-32-64 autoencoder versus scikit-learn's ``MLPRegressor(hidden_layer_sizes=(32,))``
    fitted with X as its own target. The target is the test MSE that MLPRegressor
    reaches with its defaults; ``fit`` is timed for the number of epochs it needs
    to reach it (found in a first, untimed run with X_val; the timed run repeats
    the same seeded trajectory). Goal: ratio <= 0.5.
(b) ``fit`` versus a bare hand-written PyTorch loop (shuffle, zero_grad, backward,
    step) on the same architecture, initial weights, data and epochs. Goal <= 1.15.
(c) one SGD epoch of the NumPy scratch autoencoder (``scratch.loss_and_grads`` and
    an update per minibatch) versus one PyTorch CPU epoch of the same model (float64).

Every time is the best of 3 runs (time.perf_counter). The torch thread count is
left at its default unless ``--threads`` is given. The machine line includes the
load average: timings on a busy machine are inflated.
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

from aecourse.data import load_digits  # noqa: E402
from aecourse.models import Autoencoder  # noqa: E402
from aecourse.train import fit  # noqa: E402

N_HIDDEN, BATCH, LR, SEED = 32, 64, 2e-2, 0
G, F = "tanh", "linear"  # a linear decoder, like MLPRegressor's identity output


def best_of(runs: int, fun) -> tuple[float, object]:
    """The smallest wall time of ``runs`` calls of ``fun`` and the last result."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fun()
        times.append(time.perf_counter() - start)
    return min(times), result


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


def bare_loop(model, X, *, epochs, optimizer, lr, batch_size=BATCH, seed=SEED):
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


def bench_time_to_target(X_train, X_test):
    """Row (a): seconds to the MLPRegressor's test MSE."""
    def sklearn_run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPRegressor(hidden_layer_sizes=(N_HIDDEN,), random_state=SEED).fit(
                X_train, X_train)

    t_mlp, mlp = best_of(3, sklearn_run)
    target = mean_squared_error(X_test, mlp.predict(X_test))  # per pixel
    n = X_train.shape[1]

    probe = fit(Autoencoder(n, N_HIDDEN, g=G, f=F, random_state=SEED), X_train, X_val=X_test,
                epochs=40, lr=LR, batch_size=BATCH, random_state=SEED)
    per_pixel = np.array(probe["val_loss"]) / n  # fit's loss sums over the n pixels
    if not (per_pixel <= target).any():
        return None, t_mlp, target, None, mlp.n_iter_, per_pixel.min()
    epochs = int(np.argmax(per_pixel <= target)) + 1

    def ours():
        model = Autoencoder(n, N_HIDDEN, g=G, f=F, random_state=SEED)
        fit(model, X_train, epochs=epochs, lr=LR, batch_size=BATCH, random_state=SEED)
        return model

    t_fit, model = best_of(3, ours)
    with torch.no_grad():
        reached = mean_squared_error(X_test, model(X_test).numpy())
    return t_fit, t_mlp, target, epochs, mlp.n_iter_, reached


def bench_fit_overhead(X_train, epochs=30):
    """Row (b): fit versus the bare loop, same model, weights, data, epochs."""
    n = X_train.shape[1]

    def with_fit():
        fit(Autoencoder(n, N_HIDDEN, g=G, f=F, random_state=SEED), X_train, epochs=epochs,
            lr=LR, batch_size=BATCH, random_state=SEED)

    def with_bare_loop():
        model = as_sequential(Autoencoder(n, N_HIDDEN, g=G, f=F, random_state=SEED))
        bare_loop(model, X_train, epochs=epochs, optimizer=torch.optim.Adam, lr=LR)

    with_fit(), with_bare_loop()  # warm up both
    times = {with_fit: [], with_bare_loop: []}
    for _ in range(3):  # interleaved, so that a burst of load hits both alike
        for fun, seconds in times.items():
            seconds.append(best_of(1, fun)[0])
    return min(times[with_fit]), min(times[with_bare_loop]), epochs


def bench_scratch_epoch(X_train, lr=0.1):
    """Row (c): one SGD epoch of NumPy scratch vs PyTorch (float64, sigmoid/sigmoid)."""
    try:
        from aecourse import scratch
    except ImportError:
        return None, None
    n = X_train.shape[1]
    X = X_train.astype(np.float64)

    def numpy_epoch():
        params = scratch.init_params(n, N_HIDDEN, random_state=SEED)
        order = np.random.default_rng(SEED).permutation(len(X))
        for i in range(0, len(X), BATCH):
            _, grads = scratch.loss_and_grads(params, X[order[i:i + BATCH]], g="sigmoid",
                                              f="sigmoid")
            for name in params:
                params[name] -= lr * grads[name]

    def torch_epoch():
        model = Autoencoder(n, N_HIDDEN, g="sigmoid", f="sigmoid", random_state=SEED).double()
        bare_loop(model, X, epochs=1, optimizer=torch.optim.SGD, lr=lr)

    numpy_epoch(), torch_epoch()  # warm up
    times = {numpy_epoch: [], torch_epoch: []}
    for _ in range(3):
        for fun, seconds in times.items():
            seconds.append(best_of(1, fun)[0])
    return min(times[numpy_epoch]), min(times[torch_epoch])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    if (threads := parser.parse_args().threads) is not None:
        torch.set_num_threads(threads)
    X, _ = load_digits()
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=SEED)

    t_fit, t_mlp, target, epochs, mlp_iters, reached = bench_time_to_target(X_train, X_test)
    t_fit_b, t_bare, epochs_b = bench_fit_overhead(X_train)
    t_numpy, t_torch = bench_scratch_epoch(X_train)

    def ratio(a, b):
        return "n/a" if a is None or b is None else f"{a / b:.2f}x"

    def sec(t):
        return "n/a" if t is None else f"{t:.3f} s"

    arch = f"64-{N_HIDDEN}-64 {G}/{F}, Adam lr={LR}, batch {BATCH}"
    label_a = (f"(a) to test MSE {target:.4f}: fit ({epochs} ep) vs MLPRegressor ({mlp_iters} it)"
               if epochs else f"(a) fit never reached {target:.4f} (best {reached:.4f})")
    rows = [
        (label_a, sec(t_fit), sec(t_mlp), ratio(t_fit, t_mlp), "<= 0.5x"),
        (f"(b) {epochs_b} epochs: fit vs bare PyTorch loop", sec(t_fit_b), sec(t_bare),
         ratio(t_fit_b, t_bare), "<= 1.15x"),
        ("(c) one SGD epoch, float64 sigmoid/sigmoid: scratch vs torch", sec(t_numpy),
         sec(t_torch), ratio(t_numpy, t_torch), "-"),
    ]
    print(f"aecourse benchmarks on digits ({len(X_train)} train / {len(X_test)} test), {arch}")
    print(f"machine: {machine()}")
    if epochs:
        print(f"(a) fit's test MSE after {epochs} epochs: {reached:.4f} (per pixel)")
    header = ("benchmark", "aecourse", "reference", "ratio", "goal")
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(5)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
