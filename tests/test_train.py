"""Tests for aecourse.train.fit.

The key test is Baldi & Hornik's theorem: a linear autoencoder trained with
squared error on centred data spans the top-d principal subspace, reaches
PCA's optimal loss, and yet its weights are not the (orthonormal) principal
directions. scikit-learn's PCA and scipy's subspace angles are the oracle.
"""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from aecourse.corruption import mask_noise
from aecourse.data import load_digits
from aecourse.losses import cross_entropy, jacobian_penalty, kl_sparsity, squared_error
from aecourse.models import Autoencoder, DeepAutoencoder
from aecourse.train import fit


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits()
    return X


@pytest.fixture(scope="module")
def small(digits):
    return digits[:200]


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 5, 10])
def test_linear_autoencoder_spans_the_pca_subspace_but_is_not_orthonormal(digits, d):
    X = digits - digits.mean(axis=0)
    pca = PCA(n_components=d).fit(X.astype(np.float64))
    eigenvalues = np.linalg.eigvalsh(np.cov(X.T.astype(np.float64), bias=True))  # 1/m covariance
    pca_loss = np.sort(eigenvalues)[::-1][d:].sum()  # the discarded variance

    model = Autoencoder(64, d, g="linear", f="linear", random_state=0)
    history = fit(model, X, optimizer="lbfgs", lr=1.0, epochs=8)

    W_star = model.W_star.detach().numpy().astype(np.float64)
    largest_angle = np.degrees(subspace_angles(W_star, pca.components_.T).max())
    assert largest_angle < 2.0
    with torch.no_grad():
        loss = float(squared_error(model(X), torch.as_tensor(X)))
    assert loss == pytest.approx(history["loss"][-1], rel=1e-5)
    assert abs(loss - pca_loss) / pca_loss < 0.01
    assert np.linalg.norm(W_star.T @ W_star - np.eye(d)) > 0.1  # not PCA's orthonormal basis


def test_fit_is_reproducible_with_the_same_random_state(small):
    def run(seed):
        model = Autoencoder(64, 8, random_state=0)
        history = fit(model, small, epochs=3, batch_size=32, lr=1e-2, random_state=seed)
        return history["loss"], [p.detach().clone() for p in model.parameters()]

    (loss_a, params_a), (loss_b, params_b), (loss_c, _) = run(1), run(1), run(2)
    assert loss_a == loss_b
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b, strict=True))
    assert loss_a != loss_c  # another shuffling order gives another trajectory


def test_fit_leaves_the_global_random_state_alone(small):
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    fit(Autoencoder(64, 8), small, epochs=1, corrupt=lambda xb, gen: mask_noise(xb, 0.2,
                                                                              random_state=gen))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_history_has_one_entry_per_epoch(small):
    history = fit(Autoencoder(64, 8), small, epochs=4, X_val=small[:50])
    assert set(history) == {"loss", "val_loss", "seconds"}
    assert all(len(values) == 4 for values in history.values())
    assert np.all(np.diff(history["seconds"]) >= 0)
    assert "val_loss" not in fit(Autoencoder(64, 8), small, epochs=2)


def test_history_loss_is_the_clean_full_training_set_loss(small):
    model = Autoencoder(64, 8, random_state=1)
    history = fit(model, small, epochs=2, X_val=small[:50])
    with torch.no_grad():
        X = torch.as_tensor(small)
        assert history["loss"][-1] == pytest.approx(float(squared_error(model(X), X)), rel=1e-5)
        assert history["val_loss"][-1] == pytest.approx(
            float(squared_error(model(X[:50]), X[:50])), rel=1e-5)


def test_training_reduces_the_loss_with_adam_and_sgd(small):
    for optimizer, lr in (("adam", 1e-2), ("sgd", 0.1)):
        model = Autoencoder(64, 16, g="sigmoid", f="linear", random_state=0)
        with torch.no_grad():
            X = torch.as_tensor(small)
            start = float(squared_error(model(X), X))
        history = fit(model, small, epochs=10, batch_size=32, lr=lr, optimizer=optimizer)
        assert history["loss"][-1] < 0.5 * start, optimizer


def test_numpy_and_torch_inputs_train_identically(small):
    runs = [fit(Autoencoder(64, 8), X, epochs=2) for X in (small, torch.as_tensor(small))]
    assert runs[0]["loss"] == runs[1]["loss"]


def test_cross_entropy_with_logits_trains_on_decoder_logits(small):
    model = DeepAutoencoder((64, 32, 8), random_state=0)
    history = fit(model, small, loss="cross_entropy_with_logits", epochs=3, lr=1e-2)
    with torch.no_grad():
        X = torch.as_tensor(small)
        expected = float(cross_entropy(model(X), X))  # from the sigmoid probabilities
    assert history["loss"][-1] == pytest.approx(expected, rel=1e-4)
    assert history["loss"][-1] < history["loss"][0]


def test_corrupt_feeds_the_encoder_corrupted_inputs_against_clean_targets(small):
    # Corruption that erases everything: the encoder sees only zeros, so the
    # best reconstruction of ANY input is the mean of the clean targets.
    seen_batches, targets = [], []

    def erase(X_batch, generator):
        assert isinstance(generator, torch.Generator)
        seen_batches.append(X_batch)
        return torch.zeros_like(X_batch)

    def recording_loss(x_hat, x):
        targets.append(x)
        return squared_error(x_hat, x)

    model = Autoencoder(64, 4, g="sigmoid", f="linear", random_state=0)
    W_before = model.W.detach().clone()
    fit(model, small, loss=recording_loss, corrupt=erase, optimizer="lbfgs", lr=1.0, epochs=5)
    clean = {tuple(row) for row in small.tolist()}
    assert all(tuple(row) in clean for batch in seen_batches for row in batch.tolist())
    assert all(tuple(row) in clean for x in targets for row in x.tolist())
    # dL/dW = delta x^T is zero when the encoder only ever sees x = 0
    assert torch.equal(model.W.detach(), W_before)
    with torch.no_grad():
        x_hat = model(torch.zeros(1, 64))
    np.testing.assert_allclose(x_hat[0].numpy(), small.mean(axis=0), atol=1e-3)


def test_penalty_receives_model_inputs_and_codes_and_is_minimised(small):
    calls = []

    def weight_decay(model, X_in, h):
        calls.append((X_in.shape, h.shape))
        torch.testing.assert_close(h, model.encode(X_in))
        return 10.0 * (model.W ** 2).sum()

    plain, decayed = Autoencoder(64, 8, random_state=0), Autoencoder(64, 8, random_state=0)
    fit(plain, small, epochs=3, lr=0.04, optimizer="sgd", batch_size=50)
    fit(decayed, small, epochs=3, lr=0.04, optimizer="sgd", batch_size=50, penalty=weight_decay)
    assert calls[0] == ((50, 64), (50, 8))
    assert float(decayed.W.detach().norm()) < 0.2 * float(plain.W.detach().norm())


def test_a_penalty_that_differentiates_the_encoder_trains(small):
    """An autograd penalty (the Jacobian of the encoder) works from the first, checked batch."""
    def contraction(model, X_in, h):
        return 0.1 * jacobian_penalty(model.encode, X_in)

    model = Autoencoder(64, 8, random_state=0)
    history = fit(model, small, epochs=2, lr=0.01, batch_size=50, penalty=contraction)
    assert len(history["loss"]) == 2


def test_progress_bar_is_silent_with_tqdm_disable(small, capsys, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    fit(Autoencoder(64, 8), small, epochs=2, progress=True)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("TQDM_DISABLE")
    fit(Autoencoder(64, 8), small, epochs=2, progress=False)
    assert capsys.readouterr().err == ""
    fit(Autoencoder(64, 8), small, epochs=2, progress=True)  # the positive control
    assert "loss=" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(small):
    with pytest.raises(ValueError, match="cuda.*cpu"):
        fit(Autoencoder(64, 8), small, device="cuda")


@pytest.mark.parametrize("kwargs, error, word", [
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"loss": "mse"}, ValueError, "loss"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"batch_size": 1.5}, TypeError, "batch_size"),
    ({"X_val": np.zeros((5, 3), dtype=np.float32)}, ValueError, "X_val"),
    ({"penalty": 3}, TypeError, "penalty"),
])
def test_bad_arguments_are_named(small, kwargs, error, word):
    with pytest.raises(error, match=word):
        fit(Autoencoder(64, 8), small, **kwargs)


def test_bad_data_is_named():
    with pytest.raises(TypeError, match="X"):
        fit(Autoencoder(64, 8), np.zeros((5, 64), dtype=np.int64))
    with pytest.raises(TypeError, match="model"):
        fit(torch.nn.Linear(64, 64), np.zeros((5, 64), dtype=np.float32))


def test_diverging_training_stops_with_a_hint_to_lower_the_learning_rate():
    X = np.random.default_rng(0).random((64, 8)).astype(np.float32)
    model = Autoencoder(8, 4, g="linear", f="linear", random_state=0)
    with pytest.raises(ValueError, match=r"diverged.*smaller lr"):
        fit(model, X, optimizer="sgd", lr=1e4, epochs=20, progress=False)


def test_checks_skipped_inside_fit_are_back_after_it():
    X = np.random.default_rng(0).random((32, 8)).astype(np.float32)
    model = Autoencoder(8, 4, random_state=0)
    fit(model, X, epochs=1, progress=False)
    with pytest.raises(ValueError, match="X"):
        model.encode(torch.zeros(3, 5))


# --- every row is checked once, on entry; the user's callbacks keep their checks -----------------


def test_bad_rows_after_the_first_minibatch_are_refused(digits):
    X = digits.copy()
    X[500:] *= 3.0  # rows 500+ in [0, 3]: not cross-entropy targets
    with pytest.raises(ValueError, match=r"X \(cross-entropy targets\) must lie in \[0.0, 1.0\]"):
        fit(Autoencoder(64, 8), X, loss="cross_entropy", epochs=1)
    X = digits.copy()
    X[1000, 3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        fit(Autoencoder(64, 8), X, epochs=1)


def test_bad_X_val_is_refused(digits):
    X_val = digits[:300].copy()
    X_val[250:] += 1.0
    with pytest.raises(ValueError, match=r"X_val \(cross-entropy targets\) must lie in"):
        fit(Autoencoder(64, 8), digits, loss="cross_entropy", X_val=X_val, epochs=1)
    X_val[250:] = np.inf
    with pytest.raises(ValueError, match="X_val contains NaN or infinite"):
        fit(Autoencoder(64, 8), digits, X_val=X_val, epochs=1)


def test_a_wrong_width_is_reported_with_the_users_array_and_shape(digits):
    with pytest.raises(ValueError) as info:
        fit(Autoencoder(64, 8), digits[:, :60], epochs=1)
    assert "X must have 64 features" in str(info.value)
    assert "got an array of shape (1797, 60)" in str(info.value)


@pytest.mark.parametrize("lr, error", [(0, ValueError), (-0.1, ValueError), ("0.1", TypeError)])
def test_a_learning_rate_that_is_not_positive_is_refused(small, lr, error):
    with pytest.raises(error, match="lr must be a number > 0|lr must be > 0"):
        fit(Autoencoder(64, 8), small, lr=lr, epochs=1)


def test_the_users_penalty_keeps_the_librarys_checks_inside_fit(small):
    def sparsity(model, X_in, h):  # a student's mistake: ReLU codes are not in [0, 1]
        return kl_sparsity(0.05, h)

    model = Autoencoder(64, 8, g="relu", random_state=0)
    with pytest.raises(ValueError, match=r"h \(hidden activations\) must lie in \[0.0, 1.0\]"):
        fit(model, small * 4.0, epochs=2, penalty=sparsity)


def test_the_users_corrupt_and_loss_keep_the_librarys_checks_inside_fit(small):
    def noisy(X_batch, generator):
        return mask_noise(X_batch, 1.5, random_state=generator)  # p outside [0, 1]

    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        fit(Autoencoder(64, 8), small, epochs=1, corrupt=noisy)

    calls = []

    def late_bad_loss(x_hat, x):  # fine on the checked first batch, wrong in the loop
        calls.append(1)
        return cross_entropy(x_hat, 2.0 * x if len(calls) > 1 else x)

    with pytest.raises(ValueError, match="cross-entropy targets"):
        fit(Autoencoder(64, 8), small, epochs=1, loss=late_bad_loss)


def test_a_corrupt_that_changes_the_width_is_named(small):
    with pytest.raises(ValueError, match=r"corrupt\(X_batch, generator\) must have 64 features"):
        fit(Autoencoder(64, 8), small, epochs=1, corrupt=lambda X_batch, gen: X_batch[:, :10])


def test_epoch_loss_minibatch_records_the_mean_of_the_minimised_minibatch_losses(small):
    seen = []

    def recording_loss(x_hat, x):
        value = squared_error(x_hat, x)
        seen.append(float(value.detach()))
        return value

    history = fit(Autoencoder(64, 8), small, loss=recording_loss, epochs=2, batch_size=64,
                  epoch_loss="minibatch")
    per_epoch = -(-len(small) // 64)  # 4 minibatches; the first call is fit's checked one
    batches = seen[1:]
    assert len(batches) == 2 * per_epoch
    for epoch in range(2):
        expected = np.mean(batches[epoch * per_epoch:(epoch + 1) * per_epoch])
        assert history["loss"][epoch] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="epoch_loss must be one of"):
        fit(Autoencoder(64, 8), small, epoch_loss="last")
