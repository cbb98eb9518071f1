"""brats_ssl.metrics against medpy.metric.binary on real BraTS whole-tumour masks (full 240x240x155 volumes).

Skipped when the real cases are absent (see the `brats_root` fixture in conftest.py)."""
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_erosion
from medpy.metric import binary as mb

from brats_ssl.io import find_cases, read_case
from brats_ssl.metrics import segmentation_metrics

N_CASES = 4


def _ref_pred(root, i):
    "Whole tumour of the i-th labelled case, an imperfect prediction of it, and the spacing in array order."
    cases = [c for c in find_cases(root) if c.labelled]
    if i >= len(cases): pytest.skip(f"only {len(cases)} labelled cases under {root}")
    _, seg = read_case(cases[i])
    ref = sitk.GetArrayFromImage(seg) > 0
    pred = np.roll(binary_erosion(ref), (1, -2, 1), axis=(0, 1, 2))   # too small and shifted
    zs = np.flatnonzero(ref.any(axis=(1, 2)))
    pred[zs[len(zs) // 2]] = False                                      # one missed slice: a cut through the tumour
    return ref, pred, tuple(seg.GetSpacing()[::-1])


def _medpy(pred, ref, spacing):
    return {'dice': mb.dc(pred, ref), 'ravd': abs(mb.ravd(pred, ref)),
            'hd95': mb.hd95(pred, ref, voxelspacing=spacing), 'asd': mb.asd(pred, ref, voxelspacing=spacing)}


def _check(pred, ref, spacing):
    ours, theirs = segmentation_metrics(pred, ref, spacing), _medpy(pred, ref, spacing)
    assert set(ours) == {'dice', 'ravd', 'hd95', 'asd'}
    for k in ours:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-9, rel=0), (k, ours[k], theirs[k])
    return ours


@pytest.mark.parametrize('i', range(N_CASES))
def test_equals_medpy_on_real_case(brats_root, i):
    ref, pred, spacing = _ref_pred(brats_root, i)
    if i == N_CASES - 1:
        spacing = (2.0, 0.9, 1.1)    # non-integer, anisotropic: exercises the rounding argument for the crop
    assert ref.any() and pred.any() and ref.ndim == 3
    m = _check(pred, ref, spacing)
    assert 0.5 < m['dice'] < 1 and m['hd95'] > 0     # a real, imperfect prediction
