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


# --------------------------------------------------------------------------- ReLU networks
def test_relu_ramp_and_hat_have_their_closed_forms():
    x = np.linspace(-1, 2, 301)
    np.testing.assert_array_equal(ua.relu(x), np.maximum(x, 0))
    np.testing.assert_allclose(ua.ramp(x, 0.2, 0.7), np.clip((x - 0.2) / 0.5, 0, 1), atol=1e-15)
    left, center, right = 0.1, 0.4, 1.2  # unequal sides
    expected = np.clip(np.minimum((x - left) / (center - left), (right - x) / (right - center)), 0, None)
    np.testing.assert_allclose(ua.hat(x, left, center, right), expected, atol=1e-14)
    assert ua.hat(center, left, center, right) == pytest.approx(1.0)


def test_a_hat_is_a_ramp_up_minus_a_ramp_down():
    x = np.linspace(-0.5, 1.5, 201)
    np.testing.assert_allclose(ua.hat(x, 0.2, 0.5, 0.9), ua.ramp(x, 0.2, 0.5) - ua.ramp(x, 0.5, 0.9),
                               atol=1e-14)


@pytest.mark.parametrize("call", [lambda: ua.ramp(0.0, 0.5, 0.5), lambda: ua.ramp(0.0, 0.7, 0.2),
                                  lambda: ua.hat(0.0, 0.0, 0.5, 0.4),
                                  lambda: ua.hat(0.0, 0.0, np.nan, 1.0)])
def test_ramp_and_hat_refuse_positions_out_of_order(call):
    with pytest.raises(ValueError, match="strictly increasing positions"):
        call()


def test_hat_sum_is_piecewise_linear_interpolation():
    rng = np.random.default_rng(0)
    knots = np.sort(rng.uniform(0, 1, 9))
    values = rng.normal(size=9)
    x = np.linspace(knots[0], knots[-1], 1001)
    np.testing.assert_allclose(ua.hat_sum(x, knots, values), np.interp(x, knots, values), atol=1e-12)
    np.testing.assert_allclose(ua.hat_sum(knots, knots, values), values, atol=1e-12)


@pytest.mark.parametrize("knots, values, message", [
    ([0.0, 0.5, 1.0], [1.0, 2.0], "same length"),
    ([0.5], [1.0], "at least 2"),
    ([0.0, 0.5, 0.5], [1.0, 2.0, 3.0], "strictly increasing"),
])
def test_hat_sum_refuses_bad_knots(knots, values, message):
    with pytest.raises(ValueError, match=message):
        ua.hat_sum(np.linspace(0, 1, 5), knots, values)


def test_hat_approximation_of_a_parabola_is_off_by_h_squared_over_4():
    # f = x^2: the chord on [a, a + h] exceeds f by (x - a)(a + h - x), at most h^2 / 4
    x = np.linspace(0, 1, 4001)
    for n in (3, 5, 11):
        h = 1 / (n - 1)
        err = ua.max_error(ua.hat_approximation(np.square, n, x), x ** 2)
        assert err == pytest.approx(h ** 2 / 4, rel=1e-6)
    with pytest.raises(ValueError, match=r"n \(the number of hats\) must be an integer >= 2, got 1"):
        ua.hat_approximation(np.square, 1, x)
    with pytest.raises(ValueError, match="must be an integer"):
        ua.hat_approximation(np.square, 2.5, x)


def test_smooth_target_converges_at_rate_two_and_square_root_at_one_half():
    x = np.linspace(0, 1, 20001)
    ns = np.array([17, 33, 65, 129])
    rates = {}
    for name in ("smooth", "square root"):
        f = ua.hat_target(name)
        errors = [ua.max_error(ua.hat_approximation(f, n, x), f(x)) for n in ns]
        rates[name] = ua.convergence_rate(ns - 1, errors)
    assert rates["smooth"] == pytest.approx(2.0, abs=0.05)
    assert rates["square root"] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="unknown target 'cubic'"):
        ua.hat_target("cubic")


def test_convergence_rate_recovers_a_power_law_and_refuses_bad_input():
    ns = np.array([4.0, 8, 16, 32])
    assert ua.convergence_rate(ns, 3.0 / ns ** 1.5) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="same length"):
        ua.convergence_rate([1, 2, 3], [1.0, 0.5])
    with pytest.raises(ValueError, match="finite and positive"):
        ua.convergence_rate([1, 2], [1.0, 0.0])
    with pytest.raises(ValueError, match="two different values"):
        ua.convergence_rate([2, 2], [1.0, 0.5])


def test_tent_and_its_compositions():
    x = np.linspace(0, 1, 2 ** 8 + 1)
    np.testing.assert_allclose(ua.tent(x), np.where(x <= 0.5, 2 * x, 2 - 2 * x), atol=1e-15)
    np.testing.assert_array_equal(ua.sawtooth(x, 0), x)
    np.testing.assert_allclose(ua.sawtooth(x, 3), ua.tent(ua.tent(ua.tent(x))))
    # the k-fold tent map is 0 at even multiples of 2^-k and 1 at odd ones
    for k in range(1, 6):
        grid = np.arange(2 ** k + 1) / 2 ** k
        np.testing.assert_allclose(ua.sawtooth(grid, k), np.arange(2 ** k + 1) % 2, atol=1e-12)
    with pytest.raises(ValueError, match=r"k \(the number of compositions\) must be an integer >= 0"):
        ua.sawtooth(x, -1)


def test_count_linear_pieces():
    x = np.linspace(0, 1, 2 ** 9 + 1)
    assert ua.count_linear_pieces(x, 3 * x + 1) == 1
    assert ua.count_linear_pieces(x, np.abs(x - 0.5)) == 2
    for k in range(8):
        assert ua.count_linear_pieces(x, ua.sawtooth(x, k)) == 2 ** k
    with pytest.raises(ValueError, match="strictly increasing"):
        ua.count_linear_pieces(x[::-1], x)
    with pytest.raises(ValueError, match="same length"):
        ua.count_linear_pieces(x, x[:-1])


def test_one_hidden_layer_needs_one_relu_per_kink_of_the_sawtooth():
    x = np.linspace(0, 1, 2 ** 10 + 1)
    for k in range(1, 7):
        knots = np.linspace(0, 1, 2 ** k + 1)
        bias, positions, weights = ua.interpolant_as_relus(knots, ua.sawtooth(knots, k))
        assert len(positions) == 2 ** k
        np.testing.assert_allclose(ua.relu_network(x, bias, positions, weights), ua.sawtooth(x, k),
                                   atol=1e-12)
        # m ReLUs of one scalar give at most m + 1 pieces
        assert ua.count_linear_pieces(x, ua.relu_network(x, bias, positions, weights)) <= len(positions) + 1


def test_interpolant_as_relus_weights_are_slope_changes():
    bias, positions, weights = ua.interpolant_as_relus([0.0, 0.5, 1.0], [0.0, 0.25, 1.0])  # x^2
    assert bias == 0.0
    np.testing.assert_array_equal(positions, [0.0, 0.5])
    np.testing.assert_allclose(weights, [0.5, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        ua.interpolant_as_relus([0.0, 1.0, 0.5], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        ua.relu_network(0.5, 0.0, [0.0, 0.5], [1.0])


def test_plot_sawtooths_draws_two_panels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = ua.plot_sawtooths([1, 2], [2, 4], [2, 4], [2, 4])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    plt.close(fig)


def test_hat_demo_matches_the_functions_it_illustrates():
    r = ua.hat_sum_demo()(target="square root", n=9)
    f = ua.hat_target("square root")
    np.testing.assert_allclose(r["approx"], ua.hat_approximation(f, 9, r["x"]))
    assert r["err"] == pytest.approx(10 ** r["log_err_now"][0])
    assert r["units"] == 27
    assert r["slope"] == pytest.approx(-0.5, abs=0.05)
    assert ua.hat_sum_demo()(target="smooth", n=50)["slope"] == pytest.approx(-2.0, abs=0.1)
