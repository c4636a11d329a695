"""Tests for aecourse.corruption: seeded, local randomness and the right statistics."""

import numpy as np
import pytest
import torch

from aecourse import corruption


def probs(shape, seed=0, low=0.01, high=0.99):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


# --- corruption --------------------------------------------------------------------------------


CORRUPTIONS = [
    (corruption.mask_noise, {"p": 0.3}),
    (corruption.gaussian_noise, {"sigma": 0.2}),
    (corruption.salt_and_pepper, {"p": 0.3}),
]


@pytest.mark.parametrize("corrupt, kwargs", CORRUPTIONS)
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_corruption_is_reproducible_with_a_seed_and_keeps_kind_and_dtype(corrupt, kwargs, kind):
    X = probs((50, 20), 0).astype(np.float32)
    X = torch.as_tensor(X) if kind == "torch" else X
    a = corrupt(X, **kwargs, random_state=7)
    b = corrupt(X, **kwargs, random_state=7)
    c = corrupt(X, **kwargs, random_state=8)
    assert type(a) is type(X) and a.dtype == X.dtype and a.shape == X.shape
    assert (a == b).all() and not (a == c).all()
    assert not (a == X).all()


@pytest.mark.parametrize("corrupt, kwargs", CORRUPTIONS)
def test_corruption_accepts_generators_and_leaves_global_state_alone(corrupt, kwargs):
    X = torch.rand(30, 10, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    np.random.seed(0)
    before_torch, before_np = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    a = corrupt(X, **kwargs, random_state=torch.Generator().manual_seed(3))
    b = corrupt(X, **kwargs, random_state=torch.Generator().manual_seed(3))
    corrupt(X.numpy(), **kwargs, random_state=np.random.default_rng(3))
    corrupt(X, **kwargs)  # random_state=None: fresh local entropy
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), before_torch)
    assert np.array_equal(np.random.get_state()[1], before_np)


def test_mask_noise_zeroes_a_fraction_p_and_keeps_the_rest():
    X = probs((400, 250), 1, 0.1, 1.0)
    X_tilde = corruption.mask_noise(X, 0.25, random_state=0)
    zeroed = X_tilde == 0
    assert zeroed.mean() == pytest.approx(0.25, abs=0.01)
    np.testing.assert_array_equal(X_tilde[~zeroed], X[~zeroed])
    np.testing.assert_array_equal(corruption.mask_noise(X, 0.0, random_state=0), X)
    assert np.all(corruption.mask_noise(X, 1.0, random_state=0) == 0)


def test_gaussian_noise_has_mean_zero_and_std_sigma():
    X = torch.full((400, 250), 0.5, dtype=torch.float64)
    noise = corruption.gaussian_noise(X, 0.3, random_state=0) - X
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.005)
    assert float(noise.std()) == pytest.approx(0.3, rel=0.01)
    assert torch.equal(corruption.gaussian_noise(X, 0.0, random_state=0), X)


def test_salt_and_pepper_sets_only_low_or_high_at_corrupted_positions():
    X = probs((400, 250), 2, 0.2, 0.8)  # never equal to low or high
    X_tilde = corruption.salt_and_pepper(X, 0.2, low=-1.0, high=2.0, random_state=0)
    changed = X_tilde != X
    assert changed.mean() == pytest.approx(0.2, abs=0.01)
    assert set(np.unique(X_tilde[changed])) == {-1.0, 2.0}
    assert (X_tilde == 2.0).mean() == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(X_tilde[~changed], X[~changed])


@pytest.mark.parametrize("call, error, words", [
    (lambda: corruption.mask_noise(np.zeros((2, 3)), 1.5), ValueError, ["p"]),
    (lambda: corruption.salt_and_pepper(np.zeros((2, 3)), -0.1), ValueError, ["p"]),
    (lambda: corruption.gaussian_noise(np.zeros((2, 3)), -0.1), ValueError, ["sigma"]),
    (lambda: corruption.mask_noise(np.zeros((2, 3)), 0.5, random_state="x"), TypeError,
     ["random_state"]),
    (lambda: corruption.mask_noise(torch.zeros(2, 3), 0.5, random_state=1.5), TypeError,
     ["random_state"]),
    (lambda: corruption.mask_noise(np.zeros((2, 3)), 0.5, random_state=torch.Generator()),
     TypeError, ["random_state", "numpy Generator", "NumPy X"]),
])
def test_bad_input_raises_an_error_naming_the_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)
