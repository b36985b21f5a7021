"""Loaded by pytest for every test path (tests/ and chapters/), before anything is collected.

* nbval's kernels inherit the environment set here: the chapters' stored outputs reproduce on AVX2
  and AVX-512 processors alike (see nnimaging.notebook.pin_cpu_kernels).
* nbval compares a fresh run with the stored outputs by the rules of ``nnimaging.nbcompare``:
  exact text, numbers to one unit of their last printed digit, figures to half a point and one or
  two pixel levels. A cell that nbval finds different byte for byte passes only if it agrees under
  those rules; otherwise nbval's own report of the difference stands.
"""

from nbval import plugin as _nbval

from nnimaging import nbcompare
from nnimaging.notebook import pin_cpu_kernels

pin_cpu_kernels()

_exact_compare = _nbval.IPyNbCell.compare_outputs


def _compare_within_tolerance(self, test, ref, skip_compare=None):
    if _exact_compare(self, test, ref, skip_compare):
        return True
    skip = skip_compare or self.parent.skip_compare
    problem = nbcompare.compare_outputs(
        _nbval.transform_streams_for_comparison(ref), _nbval.transform_streams_for_comparison(test),
        sanitize=self.sanitize, skip=skip,
    )
    if problem is None:
        self.comparison_traceback = []
        return True
    self.comparison_traceback.append(f"nnimaging.nbcompare: {problem}")
    return False


_nbval.IPyNbCell.compare_outputs = _compare_within_tolerance
