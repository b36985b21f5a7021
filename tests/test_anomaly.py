"""Facts about anomaly detection by reconstruction error (chapter 6): ROC curves and unfamiliar images."""

import itertools

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from nnimaging import anomaly

# ------------------------------------------------------------------ ROC analysis
def _auc_by_pairs(normal, anomalous):
    """Count the pairs: an anomaly above a normal example counts 1, a tie 1/2."""
    total = 0.0
    for a, n in itertools.product(anomalous, normal):
        total += 1.0 if a > n else 0.5 if a == n else 0.0
    return total / (len(normal) * len(anomalous))


def test_roc_auc_equals_the_brute_force_pair_count_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        normal = rng.integers(0, 8, size=rng.integers(1, 30)).astype(float)
        anomalous = rng.integers(2, 10, size=rng.integers(1, 30)).astype(float)
        assert anomaly.roc_auc(normal, anomalous) == pytest.approx(_auc_by_pairs(normal, anomalous))


def test_roc_auc_is_one_half_for_one_distribution_and_one_for_separable_scores():
    rng = np.random.default_rng(1)
    same = anomaly.roc_auc(rng.normal(size=3000), rng.normal(size=3000))
    assert abs(same - 0.5) < 0.02
    assert anomaly.roc_auc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.5   # all ties
    assert anomaly.roc_auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0
    assert anomaly.roc_auc([0.5, 0.9], [0.1, 0.2, 0.3]) == 0.0


def test_roc_curve_runs_from_nothing_to_everything_and_its_area_is_the_auc():
    rng = np.random.default_rng(2)
    normal = np.round(rng.normal(0, 1, 200), 1)            # rounding makes ties
    anomalous = np.round(rng.normal(1, 1, 150), 1)
    fpr, tpr, thresholds = anomaly.roc_curve(normal, anomalous)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds[1:]) < 0)
    for t, f, p in zip(thresholds[1:], fpr[1:], tpr[1:]):
        assert f == np.mean(normal >= t) and p == np.mean(anomalous >= t)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(anomaly.roc_auc(normal, anomalous))


def test_roc_helpers_reject_empty_or_non_finite_scores():
    with pytest.raises(ValueError, match="at least one score"):
        anomaly.roc_auc([], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        anomaly.roc_curve([1.0, np.nan], [1.0])


# ------------------------------------------------------------------ images the model never saw
def test_image_patches_are_block_averages_of_random_crops():
    rng = np.random.default_rng(0)
    sources = [rng.random((40, 50)), rng.random((60, 36))]
    patches = anomaly.image_patches(sources, n=5, size=6, zoom=3, seed=7)
    assert patches.shape == (5, 6, 6) and patches.dtype == np.float32
    draw = np.random.default_rng(7)   # the same draws, in the documented order
    for patch in patches:
        im = sources[draw.integers(2)]
        r, c = draw.integers(im.shape[0] - 18 + 1), draw.integers(im.shape[1] - 18 + 1)
        expected = im[r:r + 18, c:c + 18].reshape(6, 3, 6, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(patch, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="smaller than the crop"):
        anomaly.image_patches([np.zeros((10, 10))], n=1, size=6, zoom=2)


def test_draw_letters_makes_centred_white_on_black_glyphs_of_the_requested_height():
    letters = anomaly.draw_letters("AHX", size=28, height=20)
    assert letters.shape == (3, 28, 28) and letters.dtype == np.float32
    assert letters.min() == 0.0 and letters.max() == 1.0
    for glyph in letters:
        assert glyph[0].max() == 0 and glyph[:, 0].max() == 0   # black border
        rows = np.nonzero(glyph.max(axis=1) > 0)[0]
        cols = np.nonzero(glyph.max(axis=0) > 0)[0]
        assert 19 <= rows.max() - rows.min() + 1 <= 21            # 20 pixels tall
        assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 0.5   # centred
        assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 0.5
    assert np.abs(letters[0] - letters[1]).mean() > 0.05          # different letters differ
    with pytest.raises(ValueError, match="without spaces"):
        anomaly.draw_letters("A B")
