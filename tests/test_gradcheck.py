"""aecourse.gradcheck against gradients known in closed form."""

import numpy as np
import pytest

from aecourse.gradcheck import check_gradients, numerical_gradient, rel_error


def test_numerical_gradient_of_sum_of_squares_is_2x():
    x = np.random.default_rng(0).normal(size=(3, 4))
    grad = numerical_gradient(lambda v: np.sum(v ** 2), x)
    assert grad.shape == x.shape
    assert rel_error(grad, 2 * x) < 1e-8


def test_numerical_gradient_of_quadratic_form_is_A_plus_A_transpose_times_x():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(5, 5))            # not symmetric: the gradient is (A + A.T) x
    x = rng.normal(size=5)
    grad = numerical_gradient(lambda v: v @ A @ v, x)
    assert rel_error(grad, (A + A.T) @ x) < 1e-8


def test_numerical_gradient_restores_the_array_it_perturbs():
    x = np.random.default_rng(2).normal(size=(2, 3))
    before = x.copy()
    seen = []
    numerical_gradient(lambda v: seen.append(v is x) or float(np.sin(v).sum()), x)
    assert all(seen)                                  # perturbed in place, not a copy
    np.testing.assert_array_equal(x, before)          # and restored bit for bit


def test_numerical_gradient_rejects_float32_and_non_arrays():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        numerical_gradient(sum, [1.0, 2.0])


def test_rel_error_is_zero_for_equal_inputs_including_zeros():
    assert rel_error(0.0, 0.0) == 0.0
    assert rel_error(np.zeros(4), np.zeros(4)) == 0.0
    a = np.array([1.5, -2.0, 0.0])
    assert rel_error(a, a) == 0.0


def test_rel_error_is_symmetric_scale_free_and_one_for_opposite_signs():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=6), rng.normal(size=6)
    assert rel_error(a, b) == rel_error(b, a)
    assert rel_error(1e-5 * a, 1e-5 * b) == pytest.approx(rel_error(a, b), rel=1e-12)
    assert rel_error(a, -a) == 1.0
    assert rel_error(np.array([2.0]), np.array([-2.0])) == 1.0


def test_rel_error_measures_the_largest_difference_against_the_largest_entries():
    a = np.array([1.0, -2.0, 4.0])
    assert rel_error(a, np.array([1.0, -2.0, 4.04])) == pytest.approx(0.04 / 8.04, rel=1e-12)
    # finite-difference noise on an entry that is nearly zero does not count as a bug ...
    assert rel_error(np.array([1.0, 1e-9]), np.array([1.0, 1.1e-9])) < 1e-9
    # ... but a wrong entry of ordinary size does, whichever entry it is
    assert rel_error(a, np.array([1.5, -2.0, 4.0])) > 0.05


def test_check_gradients_accepts_correct_and_catches_wrong_gradients():
    rng = np.random.default_rng(4)
    params = {"w": rng.normal(size=(3, 2)), "v": rng.normal(size=4)}

    def fun(p):
        return np.sum(np.tanh(p["w"]) ** 2) + np.sum(p["v"] ** 3)

    right = {"w": 2 * np.tanh(params["w"]) / np.cosh(params["w"]) ** 2, "v": 3 * params["v"] ** 2}
    errors = check_gradients(fun, params, right)
    assert set(errors) == {"w", "v"}
    assert max(errors.values()) < 1e-7, errors

    wrong = dict(right, v=2 * params["v"])            # a plausible-looking mistake
    errors = check_gradients(fun, params, wrong)
    assert errors["w"] < 1e-7 and errors["v"] > 0.1, errors


def test_check_gradients_rejects_mismatched_keys_and_shapes():
    params = {"w": np.ones(3)}
    with pytest.raises(ValueError, match="same keys"):
        check_gradients(lambda p: 0.0, params, {"u": np.ones(3)})
    with pytest.raises(ValueError, match=r"grads\['w'\]"):
        check_gradients(lambda p: 0.0, params, {"w": np.ones(4)})
