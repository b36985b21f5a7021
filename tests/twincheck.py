"""Shared by the browser tests: a demo's JavaScript twin against its Python compute function.

``tests/test_site.py`` runs it on the built book's pages, ``tests/test_twins.py`` on a blank page
(no build). Both set the controls through the page's runtime (``runtime.js``), read what the twin
computed, and compare it with ``demo(**params)`` to 1e-6.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

FORMAT_TABLE = [
    (3.14159, ".2f", "3.14"), (-0.5, ".3f", "-0.500"), (12345.678, ".1e", "1.2e+04"),
    (0.256, ".1%", "25.6%"), (7.6, "d", "8"), (4, "", "4"), (2.0, "", "2"), (0.25, "", "0.25"),
    ("ReLU", ".2f", "ReLU"), (float("nan"), ".2f", ""), (None, "", ""),
    # booleans are words, whatever the spec
    (True, "", "True"), (False, ".2f", "False"), (np.True_, "d", "True"),
    # ties of the exact binary value go to the even digit (Python's format)
    (0.125, ".2f", "0.12"), (0.375, ".2f", "0.38"), (-0.125, ".2f", "-0.12"), (2.5, "d", "2"),
    (3.5, "d", "4"), (-2.5, "d", "-2"), (0.5, ".0f", "0"), (1.25, ".1e", "1.2e+00"),
    (0.00125, ".1%", "0.1%"), (99.5, "d", "100"),
    # not ties: the double of 2.675 lies below 2.675
    (2.675, ".2f", "2.67"), (1.005, ".2f", "1.00"),
    # negatives, and no minus sign on a zero
    (-7, "", "-7"), (-0.001, ".2f", "0.00"), (-0.0, "", "0"), (-0.4, "d", "0"),
    (-1e-9, ".1e", "-1.0e-09"), (-0.00001, ".1%", "0.0%"),
    # large and small: integers up to 1e16, then Python's repr
    (1e15, "", "1000000000000000"), (1e16, "", "1e+16"), (123456789012345678, "", "1.2345678901234568e+17"),
    (1e22, ".0f", "10000000000000000000000"), (1.5e-5, "", "1.5e-05"), (1e-4, "", "0.0001"),
    (5e-324, ".2e", "4.94e-324"), (1.7976931348623157e308, ".3e", "1.798e+308"), (0.1, "", "0.1"),
    (float("inf"), ".2f", "inf"), (-float("inf"), "", "-inf"),
]
"""Values and what both renderers write for them (``tests/test_demo.py`` checks it in Python, ``tests/test_twins.py`` in the browser)."""

TOLERANCE = 1e-6
"""Relative and absolute tolerance of a twin's numbers against Python's."""

# Moves every control of the i-th demo on the page to a random position (a seeded linear
# congruential generator, so a failure names a seed that reproduces it), redraws, returns the values.
RANDOM_POSITIONS_JS = """([i, seed]) => {
    const d = document.querySelectorAll('div.nnimaging-demo')[i].nnimaging;
    let s = seed;
    d.spec.controls.forEach((c, k) => { s = (s * 9301 + 49297) % 233280;
        d.index[k] = Math.floor(s / 233280 * c.values.length); });
    d.update();
    return d.params();
}"""

RESULT_JS = "i => document.querySelectorAll('div.nnimaging-demo')[i].nnimaging.result"


def need_playwright():
    """Skip where Playwright is not installed, except in CI, where that is a failure."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        message = f"playwright is not installed ({err}): pip install -r requirements-dev.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def assert_same(browser_value, python_value, where):
    """One entry of a twin's result equals Python's: strings exactly, numbers to 1e-6 (null = NaN)."""
    if isinstance(python_value, str):
        assert browser_value == python_value, where
        return
    expected = np.asarray(python_value, dtype=float)
    got = np.asarray([np.nan if v is None else v for v in np.ravel(browser_value)], dtype=float)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=TOLERANCE,
                               atol=TOLERANCE, err_msg=where)


def assert_result_matches(result: dict, demo, params: dict) -> None:
    """The twin's ``result`` at ``params`` has Python's keys and numbers."""
    expected = demo(**params)
    assert set(result) == set(expected), (demo.name, params, set(result) ^ set(expected))
    for key, value in expected.items():
        assert_same(result[key], value, f"{demo.name} {params} {key}")


def check_twin_at_random_positions(page, index: int, demo, seed: int) -> dict:
    """Set the page's ``index``-th demo to seeded random positions and compare with Python.

    Returns the control values it compared at.
    """
    params = page.evaluate(RANDOM_POSITIONS_JS, [index, seed])
    assert_result_matches(page.evaluate(RESULT_JS, index), demo, params)
    return params
