"""The rules by which a fresh run of a chapter must reproduce its stored outputs."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from nnimaging import nbcompare
from nnimaging.nbcompare import compare, compare_outputs


def _png(array) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("a, b", [
    ("loss 0.0409\n", "loss 0.0410\n"),
    ("accuracy 96.30%", "accuracy 96.31%"),
    ("gradient 8.004e-06", "gradient 8.005e-06"),
    ("after 188 updates", "after 189 updates"),
])
def test_printed_numbers_may_differ_by_one_unit_of_their_last_digit(a, b):
    assert compare("stdout", a, b) is None


@pytest.mark.parametrize("a, b", [
    ("loss 0.0409\n", "loss 0.0411\n"),           # two units
    ("threshold 0.0426", "threshold 0.0428"),
    ("max difference 3.0e-08", "max difference 6.0e-08"),  # a rounding error printed as a result
    ("after 188 updates", "after 183 updates"),
    ("loss 0.0409 (MLP)", "loss 0.0409 (CNN)"),    # words never differ
    ("[1, 2]", "[1, 2, 3]"),
])
def test_larger_or_non_numeric_differences_are_reported(a, b):
    assert compare("stdout", a, b) is not None


def test_identifiers_and_colours_are_text_not_numbers():
    assert compare("stdout", "set12/02", "set12/03") is not None
    assert compare("image/svg+xml", 'fill="#1f77b4"', 'fill="#1f77b5"') is not None
    assert compare("image/svg+xml", 'id="m4a3b" x="1.0"', 'id="m4a3c" x="1.0"') is not None


def test_figure_coordinates_within_half_a_point():
    assert compare("image/svg+xml", "M 57.231874 11.399682 L 3 4", "M 57.6 11.399682 L 3 4") is None
    assert compare("image/svg+xml", "M 57.231874 11.399682", "M 58.234009 11.399682") is not None
    # the tolerance of figures is not that of text: a printed number keeps its digit rule
    assert compare("stdout", "57.231874", "57.6") is not None


def test_embedded_images_compare_pixel_by_pixel():
    base = np.tile(np.arange(100, dtype=np.uint8), (100, 1))
    one_level = base.copy()
    one_level[0, :10] += 1                        # 0.1 % of the pixels, by one level
    many = base + 1                               # every pixel
    far = base.copy()
    far[5, 5] += 9                                # one pixel, by nine levels
    svg = '<image xlink:href="{}"/>'
    assert compare("image/svg+xml", svg.format(_png(base)), svg.format(_png(one_level))) is None
    assert "pixels" in compare("image/svg+xml", svg.format(_png(base)), svg.format(_png(many)))
    assert "levels" in compare("image/svg+xml", svg.format(_png(base)), svg.format(_png(far)))
    assert "size" in compare("text/html", _png(base), _png(base[:50]))
    assert "embedded images" in compare("text/html", _png(base) + _png(base), _png(base))


def test_demo_descriptions_allow_a_relative_difference():
    assert compare("text/html", '{"psnr":28.82371}', '{"psnr":28.82412}') is None
    assert compare("text/html", '{"std":3.9515326}', '{"std":3.9510614}') is None  # SSE4 vs AVX2 convolutions
    assert compare("text/html", '{"psnr":28.82}', '{"psnr":28.90}') is not None
    assert compare("text/html", '{"psnr":28.82}', '{"snr":28.82}') is not None


def test_glued_numbers_compare_like_printed_text():
    assert nbcompare.compare(nbcompare.GLUE_KIND, "31.0812", "31.0813") is None
    assert nbcompare.compare(nbcompare.GLUE_KIND, "31.0812", "31.0815") is not None
    assert nbcompare.compare(nbcompare.GLUE_KIND, "'BM3D'", "'DnCNN'") is not None


def test_other_kinds_must_be_identical():
    assert compare("application/json", '{"a": 1.0}', '{"a": 1.00001}') is not None


def test_outputs_are_grouped_by_kind_like_nbval():
    ref = [{"output_type": "stream", "stdout": "loss 0.0409\n"},
           {"output_type": "display_data", "data": {"text/plain": "<Figure>", "image/svg+xml": "M 1.0"},
            "metadata": {}}]
    same = [{"output_type": "stream", "stdout": "loss 0.0410\n"},
            {"output_type": "display_data", "data": {"text/plain": "<Figure>", "image/svg+xml": "M 1.2"},
             "metadata": {"x": 1}}]
    assert compare_outputs(ref, same, skip=("metadata",)) is None
    assert "output kinds" in compare_outputs(ref, ref[:1], skip=("metadata",))
    assert "outputs became" in compare_outputs(ref, ref + ref[:1], skip=("metadata",))
    sanitize = lambda s: s.replace("0x7f12ab34cd56", "0xADDRESS")  # noqa: E731
    assert compare_outputs([{"stdout": "at 0x7f12ab34cd56"}], [{"stdout": "at 0xADDRESS"}], sanitize) is None


def test_the_tolerances_are_small():
    # half a point is 1/144 inch; two levels of 255 are under 1 %: a reader sees neither
    assert nbcompare.SVG_TOLERANCE <= 0.5 and nbcompare.PIXEL_LEVELS <= 2 and nbcompare.PIXEL_SHARE <= 0.01
