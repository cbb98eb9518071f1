"""brats_ssl.evaluate on the real BraTS 2018 cases: the threshold baseline's Dice, evaluate_predictions against
segmentation_metrics, and refusal of predictions on the wrong grid.

Skipped when the real cases are absent (see the `brats_root` fixture in conftest.py). About 20 s on two cores."""
import numpy as np
import pytest
import SimpleITK as sitk

from brats_ssl.io import BratsError, BratsWarning, Geometry, find_cases, read_case, write_image
from brats_ssl.metrics import dice, segmentation_metrics
from brats_ssl.evaluate import (CASE_FIELDS, THRESHOLD_Z, evaluate_predictions, pred_path, summarise,
                                threshold_predictions, threshold_segmentation)

N_SUBSET = 3


def _labelled(root):
    cases = [c for c in find_cases(root) if c.labelled]
    if not cases: pytest.skip(f"no labelled case under {root}")
    return cases


def _subset(root, tmp_path, n=N_SUBSET):
    "A data folder under tmp_path holding symlinks to the first `n` labelled case folders (nothing is copied)."
    cases = _labelled(root)[:n]
    data = tmp_path / 'data'
    data.mkdir()
    for c in cases: (data / c.flair.parent.name).symlink_to(c.flair.parent.resolve(), target_is_directory=True)
    linked = find_cases(data)
    assert [c.id for c in linked] == [c.id for c in cases]
    return data, linked


def test_threshold_baseline_mean_dice(brats_root):
    "On the 22 BraTS 2018 cases THRESHOLD_Z was tuned on, the mean Dice is 0.767 (nbs/10_evaluate, slow cell)."
    scores = []
    for c in _labelled(brats_root):
        flair, seg = read_case(c)
        m = threshold_segmentation(flair)
        assert m.dtype == np.uint8 and m.shape == sitk.GetArrayViewFromImage(flair).shape and m.any(), c.id
        scores.append(dice(m, sitk.GetArrayViewFromImage(seg) > 0))
    mean = float(np.mean(scores))
    assert 0.70 < mean < 0.85, (mean, np.round(scores, 3))
    if len(scores) == 22:
        assert mean == pytest.approx(0.767, abs=0.002), mean


def test_evaluate_predictions_equals_direct_metrics(brats_root, tmp_path):
    data, cases = _subset(brats_root, tmp_path)
    paths = threshold_predictions(data, tmp_path / 'pred', progress=False)
    assert [p.name for p in paths] == [f"{c.id}_pred.nii.gz" for c in cases]
    with pytest.warns(BratsWarning, match=f'{len(_labelled(brats_root)) - len(cases)} labelled case.s. of .* have no prediction and are not evaluated'):
        rows = evaluate_predictions(tmp_path / 'pred', brats_root, progress=False)   # the full folder: only cases with a prediction
    assert [r['case'] for r in rows] == [c.id for c in cases]
    assert all(list(r) == CASE_FIELDS for r in rows)
    for r, c, p in zip(rows, cases, paths):
        flair, seg = read_case(c)
        pred = sitk.ReadImage(str(p))
        assert not Geometry.of(pred).differences(Geometry.of(flair))
        m = sitk.GetArrayFromImage(pred)
        assert m.dtype == np.uint8 and np.array_equal(m, threshold_segmentation(flair))
        ref = sitk.GetArrayFromImage(seg) > 0
        direct = segmentation_metrics(m, ref, seg.GetSpacing()[::-1])
        for k, v in direct.items(): assert r[k] == pytest.approx(v, rel=0, abs=1e-12), (c.id, k)
        voxel_ml = np.prod(seg.GetSpacing()) / 1000
        assert r['ref_ml'] == pytest.approx(ref.sum() * voxel_ml) and r['pred_ml'] == pytest.approx(m.sum() * voxel_ml)
        assert 0.3 < r['dice'] < 1 and r['hd95'] > 0 and 1 < r['ref_ml'] < 500
    s = summarise(rows)
    assert s['dice']['n'] == len(cases) and s['dice']['mean'] == pytest.approx(np.mean([r['dice'] for r in rows]))


def test_mismatched_geometry_is_refused(brats_root, tmp_path):
    data, (case, *_) = _subset(brats_root, tmp_path, n=1)
    flair, seg = read_case(case)
    g = Geometry.of(flair)
    mask = threshold_segmentation(flair)
    pred = tmp_path / 'pred'
    # a prediction left on a grid one slice short (e.g. not mapped back from a crop)
    short = Geometry((g.size[0], g.size[1], g.size[2] - 1), g.spacing, g.origin, g.direction).image(mask[:-1])
    write_image(short, pred_path(pred, case.id))
    with pytest.raises(BratsError, match='prediction and label grids differ: size') as e:
        evaluate_predictions(pred, data, progress=False)
    assert str(pred_path(pred, case.id)) in str(e.value) and str(case.seg) in str(e.value)
    # the right size but shifted by 5 mm
    shifted = Geometry(g.size, g.spacing, (g.origin[0] + 5.0, *g.origin[1:]), g.direction).image(mask)
    write_image(shifted, pred_path(pred, case.id))
    with pytest.raises(BratsError, match='grids differ: origin'):
        evaluate_predictions(pred, data, progress=False)
    # nothing matching at all
    with pytest.raises(BratsError, match='no prediction matches a labelled case'):
        evaluate_predictions(tmp_path, data, progress=False)
