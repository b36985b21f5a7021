"""Activation functions and the universal-approximation construction against closed forms."""

import warnings

import numpy as np
import pytest

from nnimaging import approximation as ua


def test_sigmoid_is_the_logistic_function_and_never_overflows():
    z = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(ua.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-12, atol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ua.sigmoid(-1e5) == 0.0 and ua.sigmoid(1e5) == 1.0


@pytest.mark.parametrize("name", ua.ACTIVATIONS)
def test_derivatives_match_central_differences_away_from_kinks(name):
    z = np.linspace(-3, 3, 61) + 0.013  # no sample on the kink at 0
    h = 1e-6
    numeric = (ua.activation(name, z + h, 0.2) - ua.activation(name, z - h, 0.2)) / (2 * h)
    np.testing.assert_allclose(ua.activation_derivative(name, z, 0.2), numeric, atol=1e-6)


def test_activation_values_at_known_points():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(ua.activation("step", z), [0, 1, 1])
    np.testing.assert_array_equal(ua.activation("ReLU", z), [0, 0, 3])
    np.testing.assert_allclose(ua.activation("leaky ReLU", z, 0.1), [-0.2, 0, 3])
    np.testing.assert_allclose(ua.activation("tanh", z), np.tanh(z))
    with pytest.raises(ValueError, match="unknown activation"):
        ua.activation("swish", z)


def test_a_steep_sigmoid_steps_at_minus_b_over_w():
    w, b = 50.0, -20.0
    s = -b / w
    assert ua.sigmoid(w * s + b) == pytest.approx(0.5)
    assert ua.step_at(0.3, 0.3) == pytest.approx(0.5)
    assert ua.step_at(0.29, 0.3) < 1e-4 and ua.step_at(0.31, 0.3) > 1 - 1e-4


def test_rect_is_height_inside_and_zero_outside():
    x = np.array([0.1, 0.25, 0.35, 0.5])
    np.testing.assert_allclose(ua.rect(x, 0.2, 0.4, 1.5), [0, 1.5, 1.5, 0], atol=1e-12)


def test_rect_sum_adds_rects_and_checks_shapes():
    x = np.linspace(0, 1, 101)
    total = ua.rect_sum(x, [0.1, 0.5], [0.3, 0.9], [1.0, -2.0])
    np.testing.assert_allclose(total, ua.rect(x, 0.1, 0.3, 1.0) + ua.rect(x, 0.5, 0.9, -2.0))
    with pytest.raises(ValueError, match="same length"):
        ua.rect_sum(x, [0.1, 0.5], [0.3], [1.0, 2.0])


def test_rect_approximation_error_falls_like_one_over_n():
    x = np.linspace(-0.1, 1.1, 1201)
    target = ua.target_curve(x)
    errors = [ua.max_error(ua.rect_approximation(ua.target_curve, n, x), target) for n in (5, 10, 20, 40)]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    scaled = [n * e for n, e in zip((5, 10, 20, 40), errors)]
    assert max(scaled) / min(scaled) < 1.5  # N x error is about constant
    with pytest.raises(ValueError, match="positive integer"):
        ua.rect_approximation(ua.target_curve, 0, x)


def test_target_curve_is_continuous_at_the_ends():
    assert ua.target_curve(np.array([0.0, 1.0])) == pytest.approx([0, 0], abs=1e-12)
    assert ua.target_curve(np.array([-0.5, 1.5])).tolist() == [0, 0]


def test_demo_computes_match_the_functions_they_illustrate():
    r = ua.sigmoid_demo()(w=40, b=-12)
    assert r["s"] == pytest.approx(0.3)
    np.testing.assert_allclose(r["y"], ua.sigmoid(40 * r["x"] - 12))
    r = ua.two_neurons_demo()(s1=0.2, s2=0.6, w1=0.5, w2=-0.5)
    np.testing.assert_allclose(r["y"], ua.rect(r["x"], 0.2, 0.6, 0.5))
    r = ua.rect_sum_demo()(n=7)
    assert r["err"] == pytest.approx(ua.max_error(r["approx"], r["target"]))
    assert r["err_now"][0] == pytest.approx(r["errors"][6]) == pytest.approx(r["err"])
    r = ua.activation_demo()(fn="tanh", alpha=0.3)
    np.testing.assert_allclose(r["df"], 1 - np.tanh(r["z"]) ** 2)
