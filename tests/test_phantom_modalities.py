"""Phantoms with T1, T1ce and T2 beside FLAIR: the default stays FLAIR-only and unchanged, each tumour region has a
sequence that shows it, and `write_phantoms` writes the extra modalities where `find_cases` finds them."""
import hashlib, json

import numpy as np
import pytest
import SimpleITK as sitk

from brats_ssl.io import MODALITIES, BratsError, Geometry, find_cases, read_modality
from brats_ssl.phantom import make_phantom, make_phantom_images, write_phantoms

SMALL = dict(size=(32, 40, 24), spacing=(6., 6., 6.))
# make_phantom(seed) at the default grid as it was before T1, T1ce and T2 existed: the label's sha256 (integers) and the
# FLAIR's mean, standard deviation and brain voxels (a numpy or scipy release may round a few int16 voxels another way)
REF = {0: ('f2daa2722663ff236e7d2a4c4021656fbf007f784a5d3aa4f1f443d771b41f81', 26.7465, 67.2599, 48815),
       1: ('af8a88bdda8ee46408603f2bb87cfc7c13021d9351e0d7a5a4e1854d7122fcf4', 32.5901, 81.5595, 48682),
       2: ('7d65ce0ddada06130a7ea7f1c013d9ae9eb56c68290e43c6b96ed8c10285dca4', 26.8007, 75.766, 40723),
       3: ('f09a8b0e00333a8a739c5dd14aff0f866148e92e7c0c07e110febf6d144e4778', 28.0211, 80.1493, 39189)}


def arr(img): return sitk.GetArrayFromImage(img)
def sha(a): return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.parametrize('seed', range(4))
def test_phantom_default_unchanged(seed):
    flair, seg = (arr(im) for im in make_phantom(seed))
    label, mean, std, voxels = REF[seed]
    assert sha(seg) == label
    np.testing.assert_allclose([flair.mean(), flair.std()], [mean, std], rtol=1e-3)
    assert abs(int((flair > 0).sum()) - voxels) <= voxels // 1000
    ims = make_phantom_images(seed)                                  # all four modalities
    assert list(ims) == ['flair', 't1', 't1ce', 't2', 'seg']
    np.testing.assert_array_equal(arr(ims['flair']), flair)
    np.testing.assert_array_equal(arr(ims['seg']), seg)


def test_phantom_contrasts():
    for seed in (4, 5, 6):
        ims = make_phantom_images(seed)
        a = {k: arr(im) for k, im in ims.items()}
        s, brain = a['seg'], a['flair'] > 0
        normal = brain & (s == 0)
        mean = lambda m, r: a[m][r].astype(float).mean()
        for m in MODALITIES:
            assert a[m].dtype == np.int16 and ((a[m] > 0) == brain).all(), m
            assert Geometry.of(ims[m]) == Geometry.of(ims['seg'])
        assert mean('t1ce', s == 4) > 1.3 * mean('t1ce', s == 1)      # enhancing rim around a dark necrosis
        assert mean('t1ce', s == 4) > 1.3 * np.median(a['t1ce'][normal])
        assert mean('t2', s == 2) > mean('t2', normal) and mean('flair', s == 2) > mean('flair', normal)   # oedema
        assert mean('t2', s == 1) > max(mean('t2', s == 2), mean('t2', s == 4))                          # necrosis brightest on T2
        assert mean('t1', s > 0) < np.median(a['t1'][normal])                                             # tumour darker on T1


def test_phantom_modalities_independent_and_deterministic():
    all4 = make_phantom_images(7, **SMALL)
    t2 = make_phantom_images(7, **SMALL, modalities='t2')
    assert list(t2) == ['flair', 't2', 'seg']
    np.testing.assert_array_equal(arr(t2['t2']), arr(all4['t2']))
    again = make_phantom_images(7, **SMALL)
    for k in all4: np.testing.assert_array_equal(arr(again[k]), arr(all4[k]))


def test_phantom_write_modalities(tmp_path):
    cases = write_phantoms(tmp_path / 'd', n=2, seed=1, **SMALL, modalities=('t1', 't1ce', 't2'))
    assert [c.modalities for c in cases] == [MODALITIES] * 2
    assert cases[0].t1ce == tmp_path / 'd' / 'Phantom_000' / 'Phantom_000_t1ce.nii.gz'
    ref = make_phantom_images(100003, **SMALL)
    for m in MODALITIES: np.testing.assert_array_equal(arr(read_modality(cases[0], m)), arr(ref[m]))
    assert json.loads((tmp_path / 'd' / 'phantom.json').read_text())['modalities'] == list(MODALITIES)
    assert find_cases(tmp_path / 'd') == cases
    mtime = cases[1].flair.stat().st_mtime_ns
    cases[1].t1.unlink()                                                 # an interrupted run: only that file is written
    assert write_phantoms(tmp_path / 'd', n=2, seed=1, **SMALL, modalities=MODALITIES) == cases
    assert cases[1].flair.stat().st_mtime_ns == mtime
    with pytest.raises(BratsError, match=r"modalities=\['flair', 't1', 't1ce', 't2'\] \(asked \['flair'\]\)"):
        write_phantoms(tmp_path / 'd', n=2, seed=1, **SMALL)
    flair_only = write_phantoms(tmp_path / 'f', n=1, seed=1, **SMALL)
    assert flair_only[0].modalities == ('flair',) and 'modalities' not in json.loads((tmp_path / 'f' / 'phantom.json').read_text())
    with pytest.raises(BratsError, match=r"modalities=\['flair'\] \(asked \['flair', 't2'\]\)"):
        write_phantoms(tmp_path / 'f', n=1, seed=1, **SMALL, modalities=('t2',))


@pytest.mark.parametrize('bad', [('flair', 'pd'), ('T1',), 'dwi'])
def test_phantom_unknown_modality(tmp_path, bad):
    name = bad if isinstance(bad, str) else bad[-1]
    with pytest.raises(BratsError, match=f"unknown phantom modality '{name}'"):
        make_phantom_images(0, **SMALL, modalities=bad)
    with pytest.raises(BratsError, match=f"unknown phantom modality '{name}'"):
        write_phantoms(tmp_path / 'x', n=1, **SMALL, modalities=bad)
    assert not (tmp_path / 'x').exists()
