"""Tests of aecourse.grading: disabling library functions, replacing names, clear assertions."""

import sys
import textwrap

import numpy as np
import pytest
import torch

from aecourse import grading
from aecourse.grading import DelegationError, assert_close, assert_shape, assert_true, disabled


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """An importable module with a plain function, a closure and a class."""
    (tmp_path / "toy_graded_lib.py").write_text(textwrap.dedent("""
        def double(x):
            return 2 * x

        def _make_adder(k):
            def add(x):
                return x + k
            return add

        add_three = _make_adder(3)

        class Scaler:
            def __init__(self, factor):
                self.factor = factor

            def apply(self, x):
                return self.factor * x

            @classmethod
            def unit(cls):
                return cls(1)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_graded_lib

    yield toy_graded_lib
    sys.modules.pop("toy_graded_lib", None)


def test_disabled_blocks_the_library_function_and_its_aliases():
    import aecourse.data
    from aecourse.data import binarize as alias

    X = np.array([[0.2, 0.8]], dtype=np.float32)
    with disabled("data.binarize", graded="my_binarize"):
        for call in (aecourse.data.binarize, alias):
            with pytest.raises(DelegationError, match="aecourse.data.binarize is disabled while "
                                                      "your my_binarize is graded"):
                call(X)
    np.testing.assert_array_equal(alias(X), [[0.0, 1.0]])


def test_disabled_restores_the_function_after_an_exception():
    import aecourse.data

    original = aecourse.data.binarize.__code__
    with pytest.raises(KeyError), disabled("aecourse.data.binarize"):
        raise KeyError("student code crashed")
    assert aecourse.data.binarize.__code__ is original
    assert not grading._ACTIVE


def test_disabled_nests_and_overlaps(toy_module):
    with disabled("toy_graded_lib.double", graded="outer"):
        with disabled("toy_graded_lib.double", "toy_graded_lib.add_three", graded="inner"):
            with pytest.raises(DelegationError, match="inner"):
                toy_module.double(1)
            with pytest.raises(DelegationError):
                toy_module.add_three(1)
        # leaving the inner block keeps the outer one in force, with the outer message
        with pytest.raises(DelegationError, match="outer"):
            toy_module.double(1)
        assert toy_module.add_three(1) == 4
    assert toy_module.double(2) == 4


def test_disabled_handles_closures_and_whole_classes(toy_module):
    scaler = toy_module.Scaler(2)
    with disabled("toy_graded_lib.add_three", "toy_graded_lib.Scaler"):
        with pytest.raises(DelegationError):
            toy_module.add_three(0)
        with pytest.raises(DelegationError):
            toy_module.Scaler(5)
        with pytest.raises(DelegationError):
            scaler.apply(1)
        with pytest.raises(DelegationError):
            toy_module.Scaler.unit()
    assert toy_module.add_three(0) == 3
    assert toy_module.Scaler.unit().apply(7) == 7


def test_disabled_rejects_unknown_names_and_leaves_nothing_behind(toy_module):
    with pytest.raises(ValueError, match="no function called 'losses.not_a_function'"):
        with disabled("toy_graded_lib.double", "losses.not_a_function"):
            pass
    assert toy_module.double(2) == 4
    assert not grading._ACTIVE


def test_replaced_swaps_names_and_restores_them():
    namespace = {"pca_svd": "student's"}
    with grading.replaced(namespace, pca_svd="reference", extra=1):
        assert namespace == {"pca_svd": "reference", "extra": 1}
    assert namespace == {"pca_svd": "student's"}


def test_assert_close_message_gives_expected_actual_and_difference():
    with pytest.raises(AssertionError) as info:
        assert_close(np.array([1.0, 2.0, 3.5]), np.array([1.0, 2.0, 3.0]), what="eigenvalues")
    message = str(info.value)
    assert "eigenvalues" in message and "3.5" in message and "3." in message
    assert "max |difference| = 0.5" in message and "index (2,)" in message


def test_assert_close_reports_shape_mismatch_none_and_nan():
    with pytest.raises(AssertionError, match=r"expected shape \(2, 3\), got shape \(3, 2\)"):
        assert_close(np.zeros((3, 2)), np.zeros((2, 3)), what="components")
    with pytest.raises(AssertionError, match="got NoneType None .did the function forget"):
        assert_close(None, 1.0, what="loss")
    with pytest.raises(AssertionError, match="expected finite values"):
        assert_close(float("nan"), 1.0, what="loss")


def test_assert_close_accepts_tensors_and_tolerances():
    assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-9], what="x")
    assert_close(1.0 + 1e-4, 1.0, what="x", rtol=1e-3)
    with pytest.raises(AssertionError):
        assert_close(1.0 + 1e-4, 1.0, what="x", rtol=1e-6)


def test_assert_shape_and_assert_true():
    assert_shape(np.zeros((2, 3)), (2, 3), what="W")
    with pytest.raises(AssertionError, match=r"W: expected shape \(3, 2\), got shape \(2, 3\)"):
        assert_shape(np.zeros((2, 3)), (3, 2), what="W")
    with pytest.raises(AssertionError, match="angles must ascend"):
        assert_true(False, "angles must ascend")


# ------------------------------------------------------------------ quick_check (visible checks)
def test_quick_check_passes_on_close_values_of_any_array_kind():
    grading.quick_check(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), what="w", hint="h")
    grading.quick_check(3, 3.0, what="w", hint="h")


def test_quick_check_names_the_matching_mistake_before_the_hint():
    with pytest.raises(AssertionError) as error:
        grading.quick_check(np.array([2.0, 4.0]), np.array([1.0, 2.0]), what="the mean",
                            hint="check the axis", mistakes=[("a missing 1/m", [2.0, 4.0])])
    message = str(error.value)
    assert message.startswith("expected [1., 2.], got [2., 4.]: the mean.")
    assert "That is what a missing 1/m gives." in message and "check the axis" not in message


def test_quick_check_gives_the_hint_and_the_shape_when_no_mistake_matches():
    with pytest.raises(AssertionError) as error:
        grading.quick_check(np.zeros((2, 2)), np.zeros(2), what="h", hint="transpose W?",
                            mistakes=[("a transposed W", np.ones(2))])
    assert "(shape (2, 2))" in str(error.value) and "Likely cause: transpose W?" in str(error.value)


def test_quick_check_says_what_came_when_it_is_not_a_number():
    with pytest.raises(AssertionError, match="got NoneType None: x_hat"):
        grading.quick_check(None, np.zeros(3), what="x_hat", hint="return it")
