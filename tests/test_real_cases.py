"""Preprocessing on the real BraTS 2018 cases (BRATS_DATA, default ../shared/data/brats18): skipped where absent."""
import numpy as np
import SimpleITK as sitk

from brats_ssl.io import Geometry, find_cases, read_case
from brats_ssl.preprocess import load_case, preprocess_case, preprocess_dataset


def test_every_case_found(brats_root):
    cases = find_cases(brats_root)
    dirs = sorted(d.name for d in brats_root.iterdir() if d.is_dir())
    assert [c.id for c in cases] == dirs and len(cases) == 22
    assert all(c.labelled and c.flair.parent.name == c.id for c in cases)


def _check(p, seg):
    x, y = sitk.GetArrayFromImage(p.image), sitk.GetArrayFromImage(p.label)
    brain = x != 0
    assert abs(x[brain].mean()) < 1e-3 and abs(x[brain].std() - 1) < 1e-3
    lo, hi = p.info['clip']
    assert x[brain].min() >= lo - 1e-4 and x[brain].max() <= hi + 1e-4 and lo < -1 and hi > 1
    wt = sitk.GetArrayFromImage(seg) > 0
    assert set(np.unique(y)) == {0, 1}
    assert y.sum() == wt.sum(), "a tumour voxel lies outside the crop"
    assert np.prod(p.image.GetSize()) < 0.6 * wt.size, "the crop should remove much of the background"
    r = p.restore(p.label)
    assert Geometry.of(r) == Geometry.of(seg)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(r), wt.astype(np.uint8))


def test_preprocess_every_case(brats_root):
    for case in find_cases(brats_root):
        flair, seg = read_case(case)
        _check(preprocess_case(flair, seg), seg)


def test_constant_nonzero_background(brats_root):
    "A copy already z-scored, its background at a constant negative value, gives the same crop and image."
    flair, seg = read_case(find_cases(brats_root)[0])
    shifted = sitk.Cast(flair, sitk.sitkFloat32) / 137.0 - 1.7
    a, b = preprocess_case(flair, seg), preprocess_case(shifted, seg)
    assert a.info['bbox_start'] == b.info['bbox_start'] and a.info['bbox_size'] == b.info['bbox_size']
    np.testing.assert_allclose(sitk.GetArrayFromImage(a.image), sitk.GetArrayFromImage(b.image), atol=1e-4)


def test_dataset_pool_and_resampling(brats_root, tmp_path):
    "Two real cases through the process pool at 2 mm; the data folder is left untouched."
    data = tmp_path / 'data'
    data.mkdir()
    for c in find_cases(brats_root)[:2]:
        (data / c.id).symlink_to(c.flair.parent, target_is_directory=True)
    before = {p: p.stat().st_mtime_ns for p in data.rglob('*')}
    ids = preprocess_dataset(data, tmp_path / 'prep', spacing=2.0, workers=2, progress=False)
    assert len(ids) == 2 and {p: p.stat().st_mtime_ns for p in data.rglob('*')} == before
    for cid in ids:
        p = load_case(tmp_path / 'prep', cid)
        assert p.image.GetSpacing() == (2.0, 2.0, 2.0)
        seg = read_case(next(c for c in find_cases(data) if c.id == cid))[1]
        r, wt = sitk.GetArrayFromImage(p.restore(p.label)) > 0, sitk.GetArrayFromImage(seg) > 0
        assert 2 * (r & wt).sum() / (r.sum() + wt.sum()) > 0.9
        assert Geometry.of(p.restore(p.label)) == Geometry.of(seg)
