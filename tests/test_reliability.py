"""Reliability (issue 6): bad inputs give one clear `BratsError` (exit status 2 from `brats-ssl`, no traceback), user files are
never changed, outputs are atomic, checkpoints are checked, and an interrupted run resumes to the same weights."""
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, fields
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from hypothesis import HealthCheck, example, given, settings, strategies as st

import brats_ssl.io as bio
from brats_ssl.io import BratsError, BratsWarning, atomic_path, find_cases, read_case, read_image, write_image, write_json
from brats_ssl.phantom import make_phantom, write_phantoms
from brats_ssl.preprocess import brain_mask, preprocess_case, preprocess_dataset, load_arrays, list_preprocessed
from brats_ssl.data import PatchDataset, split_cases, load_volumes
from brats_ssl.metrics import segmentation_metrics
from brats_ssl.train import TrainConfig, train, load_checkpoint, model_from_checkpoint, TINY as _TINY
from brats_ssl.pipeline import predict_dataset
from brats_ssl.cli import main

SIZE, SPACING = (40, 40, 28), (6.0, 6.0, 6.0)
TINY = dict(_TINY, device='cpu', val_every=2)
TINY_ARGS = ['--patch', *TINY['patch'], '--filters', *TINY['filters'], '--device', 'cpu', '--T', TINY['T'], '--workers', 0]
RUN = [sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())']


def brats_ssl(*args):
    "Run the command as a user would, in a fresh process."
    return subprocess.run([*RUN, *map(str, args)], capture_output=True, text=True, timeout=120)


def cli(*args, fresh=False):
    "`brats-ssl ARGS`: in a fresh process when `fresh` (each start imports torch: ~3 s), else through `main` in this one."
    if fresh: return brats_ssl(*args)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out): rc = main([str(a) for a in args])   # any other exception fails the test
    return SimpleNamespace(returncode=rc, stderr=err.getvalue(), stdout=out.getvalue())


def snapshot(folder) -> dict:
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()} if folder.exists() else {}


def no_temp_files(folder) -> bool:
    return not list(Path(folder).rglob('.*.tmp*')) if Path(folder).exists() else True


def error_lines(p, command):
    "The error lines of a failed `brats-ssl` run (progress bars may share stderr)."
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert 'Traceback' not in p.stderr, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith(f'brats-ssl {command}: error:')]
    assert len(lines) == 1, p.stderr
    return p.stderr[p.stderr.index(lines[0]):]


@pytest.fixture(scope='module')
def phantom():
    return make_phantom(3, SIZE, SPACING)


def put_case(root, flair=None, seg=None, cid='X_1'):
    "A case folder `root/cid` with FLAIR/label given as sitk images, bytes, or None (file absent)."
    d = Path(root) / cid
    d.mkdir(parents=True, exist_ok=True)
    for k, v in (('flair', flair), ('seg', seg)):
        f = d / f'{cid}_{k}.nii.gz'
        if isinstance(v, sitk.Image): sitk.WriteImage(v, str(f))
        elif isinstance(v, bytes): f.write_bytes(v)
    return d


def nii_bytes(img, tmp_path) -> bytes:
    f = tmp_path / '_scratch.nii.gz'
    sitk.WriteImage(img, str(f))
    b = f.read_bytes()
    f.unlink()
    return b


def with_array(img, arr):
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


# ---------------------------------------------------------------- data folders

def test_missing_empty_unrecognisable_folders(tmp_path):
    with pytest.raises(BratsError, match='does not exist'): find_cases(tmp_path / 'nope')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BratsError, match='no BraTS case found'): find_cases(tmp_path / 'empty')
    junk = tmp_path / 'junk'
    (junk / 'a').mkdir(parents=True)
    (junk / 'a' / 'readme.txt').write_text('hello')
    (junk / 'a' / 'brain.nii.gz').write_bytes(b'x' * 10)
    (junk / 'a' / 'a_seg.nii.gz').write_bytes(b'x' * 10)   # a label without its FLAIR is not a case
    with pytest.raises(BratsError, match='no BraTS case found'): find_cases(junk)
    before = snapshot(junk)
    for data, what in ((tmp_path / 'nope', 'does not exist'), (tmp_path / 'empty', 'no BraTS case found'), (junk, 'no BraTS case found')):
        msg = error_lines(cli('preprocess', data, tmp_path / 'out', fresh=what == 'does not exist'), 'preprocess')
        assert what in msg and str(data) in msg
    assert snapshot(junk) == before and not (tmp_path / 'nope').exists()


def test_same_case_id_twice(tmp_path, phantom):
    put_case(tmp_path / 'data' / 'A', *phantom)
    put_case(tmp_path / 'data' / 'B', *phantom)
    with pytest.raises(BratsError, match="case id 'X_1' found twice"): find_cases(tmp_path / 'data')
    msg = error_lines(cli('preprocess', tmp_path / 'data', tmp_path / 'out'), 'preprocess')
    assert 'found twice' in msg and 'A/X_1/X_1_flair.nii.gz' in msg and 'B/X_1/X_1_flair.nii.gz' in msg


def test_flair_missing_label_missing(tmp_path, phantom):
    "A folder holding only a label is not a case (named in a warning beside real cases); a case without label is unlabelled."
    flair, seg = phantom
    data = tmp_path / 'data'
    put_case(data, None, seg, cid='OnlySeg')
    put_case(data, flair, None, cid='NoSeg')
    with pytest.warns(BratsWarning, match='not used: .*OnlySeg: OnlySeg_seg.nii.gz .no <case>_flair'):
        cases = find_cases(data)
    assert [c.id for c in cases] == ['NoSeg'] and not cases[0].labelled
    before = snapshot(data)
    with pytest.warns(BratsWarning, match='OnlySeg'):        # told again by the command that leaves it out
        assert preprocess_dataset(data, tmp_path / 'prep', workers=1, progress=False) == ['NoSeg']
    x, y = load_arrays(tmp_path / 'prep', 'NoSeg')
    assert y is None and x.dtype == np.float32
    assert snapshot(data) == before and no_temp_files(tmp_path / 'prep')


# ---------------------------------------------------------------- broken files

def _bad_file(kind, phantom, tmp_path):
    flair, seg = phantom
    good = nii_bytes(flair, tmp_path)
    if kind == 'empty': return b'', 'file is empty'
    if kind == 'truncated': return good[:len(good) // 2], 'cannot read'
    if kind == 'random': return np.random.default_rng(0).bytes(5000), 'cannot read'
    if kind == '2d': return nii_bytes(flair[:, :, 10], tmp_path), 'is 2D'
    if kind == '4d':
        arr = sitk.GetArrayFromImage(flair)
        return nii_bytes(sitk.GetImageFromArray(np.stack([arr, arr]), isVector=False), tmp_path), 'is 4D'
    raise ValueError(kind)


@pytest.mark.parametrize('which', ['flair', 'seg'])
@pytest.mark.parametrize('kind', ['empty', 'truncated', 'random', '2d', '4d'])
def test_broken_files(tmp_path, phantom, kind, which):
    bad, what = _bad_file(kind, phantom, tmp_path)
    flair, seg = phantom
    data = tmp_path / 'data'
    d = put_case(data, bad if which == 'flair' else flair, bad if which == 'seg' else seg)
    bad_path = d / f'X_1_{which}.nii.gz'
    name = 'FLAIR' if which == 'flair' else 'label'
    with pytest.raises(BratsError, match=what) as e: read_case(find_cases(data)[0])
    assert str(bad_path) in str(e.value) and name in str(e.value)
    with pytest.raises(BratsError, match=what): read_image(bad_path, name)
    before = snapshot(data)
    with pytest.raises(BratsError, match=what): preprocess_dataset(data, tmp_path / 'prep', workers=1, progress=False)
    msg = error_lines(cli('preprocess', data, tmp_path / 'prep2', '--workers', 1, fresh=(kind, which) == ('truncated', 'flair')), 'preprocess')
    assert what in msg and str(bad_path) in msg
    assert snapshot(data) == before
    assert no_temp_files(tmp_path / 'prep') and no_temp_files(tmp_path / 'prep2')
    assert not list((tmp_path / 'prep').glob('X_1*')), 'no output for a case that failed'


def test_4d_with_one_volume_is_3d(tmp_path, phantom):
    arr = sitk.GetArrayFromImage(phantom[0])
    f = tmp_path / 'f.nii.gz'
    sitk.WriteImage(sitk.GetImageFromArray(arr[None], isVector=False), str(f))
    assert read_image(f).GetSize() == phantom[0].GetSize()


def _moved(img, what):
    out = sitk.Image(img)
    if what == 'size': return sitk.Image(img)[:, :, 1:]
    if what == 'spacing': out.SetSpacing((6.0, 6.0, 5.0))
    if what == 'origin': out.SetOrigin(tuple(o + 3 for o in img.GetOrigin()))
    if what == 'direction': out.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    return out


@pytest.mark.parametrize('what', ['size', 'spacing', 'origin', 'direction'])
def test_grids_differ(tmp_path, phantom, what):
    flair, seg = phantom
    data = tmp_path / 'data'
    put_case(data, flair, _moved(seg, what))
    with pytest.raises(BratsError, match=f'grids differ: {what}'): read_case(find_cases(data)[0])
    with pytest.raises(BratsError, match=f'grids differ: {what}'): preprocess_case(flair, _moved(seg, what))
    before = snapshot(data)
    msg = error_lines(cli('preprocess', data, tmp_path / 'prep', '--workers', 1, fresh=what == 'origin'), 'preprocess')
    assert f'grids differ: {what}' in msg and 'X_1_seg.nii.gz' in msg and 'X_1_flair.nii.gz' in msg
    assert snapshot(data) == before and no_temp_files(tmp_path / 'prep')


@pytest.mark.parametrize('label,what', [('five', 'are not BraTS labels'), ('float', 'fractional values')])
def test_bad_label_values(tmp_path, phantom, label, what):
    flair, seg = phantom
    arr = sitk.GetArrayFromImage(seg)
    if label == 'five': arr = np.where(arr == 4, 5, arr).astype(np.uint8)     # 3 is a BraTS 2012-2016 label; 5 is none
    else: arr = arr.astype(np.float32) * 0.75      # an interpolated label
    data = tmp_path / 'data'
    put_case(data, flair, with_array(seg, arr))
    with pytest.raises(BratsError, match=what): read_case(find_cases(data)[0])
    before = snapshot(data)
    msg = error_lines(cli('preprocess', data, tmp_path / 'prep', '--workers', 1), 'preprocess')
    assert what in msg and 'X_1_seg.nii.gz' in msg
    assert snapshot(data) == before and no_temp_files(tmp_path / 'prep')


def test_flair_all_zeros(tmp_path, phantom):
    flair, seg = phantom
    data = tmp_path / 'data'
    put_case(data, with_array(flair, np.zeros_like(sitk.GetArrayFromImage(flair))), seg)
    with pytest.raises(BratsError, match='FLAIR is constant') as e: preprocess_case(find_cases(data)[0].flair)
    assert 'X_1_flair.nii.gz' in str(e.value)
    before = snapshot(data)
    msg = error_lines(cli('preprocess', data, tmp_path / 'prep', '--workers', 1), 'preprocess')
    assert 'FLAIR is constant' in msg and 'X_1_flair.nii.gz' in msg
    assert snapshot(data) == before and no_temp_files(tmp_path / 'prep')


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_flair_nan_inf(tmp_path, phantom, bad):
    "NaN/Inf voxels are refused, in an image and in a NIfTI file (which SimpleITK alone would read as 0)."
    flair, seg = phantom
    arr = sitk.GetArrayFromImage(flair).astype(np.float32)
    arr[14, 20, 20] = bad
    img = with_array(flair, arr)
    with pytest.raises(BratsError, match='FLAIR holds 1 NaN or Inf voxels'): preprocess_case(img, seg)
    data = tmp_path / 'data'
    put_case(data, img, seg)
    with pytest.raises(BratsError, match='X_1_flair.nii.gz: FLAIR holds 1 NaN or Inf voxels'):
        read_image(find_cases(data)[0].flair, 'FLAIR')
    with pytest.raises(BratsError, match='X_1_flair.nii.gz: FLAIR holds 1 NaN or Inf voxels'):
        preprocess_dataset(data, tmp_path / 'prep', workers=1, progress=False)


def test_constant_nonzero_background_is_fine(phantom):
    flair, seg = phantom
    arr = sitk.GetArrayFromImage(flair).astype(np.int16)
    bg = arr == 0
    arr[bg] = -37                                # a value no brain voxel holds
    p = preprocess_case(with_array(flair, arr), seg)
    ref = preprocess_case(flair, seg)
    assert p.info['bbox_size'] == ref.info['bbox_size'] and p.info['brain_voxels'] == ref.info['brain_voxels']
    assert sitk.GetArrayViewFromImage(p.label).sum() == sitk.GetArrayViewFromImage(ref.label).sum() > 0


def test_empty_tumour(phantom):
    flair, seg = phantom
    p = preprocess_case(flair, with_array(seg, np.zeros_like(sitk.GetArrayFromImage(seg))))
    y = sitk.GetArrayFromImage(p.label)
    assert y.dtype == np.uint8 and y.sum() == 0 and p.info['brain_voxels'] > 100
    empty, some = np.zeros(y.shape, bool), np.zeros(y.shape, bool)
    some[5:8, 5:8, 5:8] = True
    diag = float(np.linalg.norm(np.array(y.shape) * 6.0))
    assert segmentation_metrics(empty, empty, (6, 6, 6)) == dict(dice=1.0, ravd=0.0, hd95=0.0, asd=0.0)
    m = segmentation_metrics(some, empty, (6, 6, 6))
    assert m['dice'] == 0 and m['ravd'] == float('inf')
    assert m['hd95'] == pytest.approx(diag) and m['asd'] == pytest.approx(diag)


# ---------------------------------------------------------------- hypothesis: random files

DTYPES = [np.uint8, np.int16, np.float32, np.float64]


@st.composite
def volumes(draw):
    ndim = draw(st.sampled_from([2, 3, 3, 3, 4]))
    shape = tuple(draw(st.integers(1, 7)) for _ in range(ndim))
    dtype = draw(st.sampled_from(DTYPES))
    fill = draw(st.sampled_from(['random', 'constant', 'zeros', 'nan', 'inf', 'blob']))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    arr = rng.uniform(0, 200, shape)
    if fill == 'constant': arr[:] = 7
    if fill == 'zeros': arr[:] = 0
    if fill == 'blob':
        arr[:] = 0
        arr[tuple(slice(s // 3, max(s // 3 + 1, 2 * s // 3)) for s in shape)] = rng.uniform(1, 200)
    arr = arr.astype(dtype)
    if fill in ('nan', 'inf') and np.issubdtype(dtype, np.floating): arr.flat[seed % arr.size] = np.nan if fill == 'nan' else -np.inf
    spacing = tuple(draw(st.sampled_from([0.1, 1.0, 2.5, 7.0])) for _ in range(ndim))
    return arr, spacing


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vol=volumes(), label=st.sampled_from([None, 'good', 'bad']), resample=st.sampled_from([None, 2.0]))
@example(vol=(np.arange(1, 13, dtype=np.uint8).reshape(2, 2, 3), (0.1, 0.1, 0.1)), label=None, resample=2.0)  # no brain left after resampling
@example(vol=(np.array([127, 53, 8, 3, 162, 182, 121, 145, 108, 187, 163, 0], np.uint8).reshape(1, 2, 2, 3), (0.1,) * 4), label=None, resample=None)  # one volume in a 4-D file
@example(vol=(np.array([127, 53, 8, 3, 162, 182, 121, 145], np.uint8).reshape(1, 2, 2, 2), (0.1,) * 4), label=None, resample=None)   # the same, no brain
@example(vol=(np.pad(np.full((2, 2, 2), 49, np.uint8), 1), (1.0,) * 3), label=None, resample=None)   # a brain of one intensity
def test_random_files_give_results_or_bratserror(tmp_path, vol, label, resample):
    """Each random file gets the answer it should: the error that names its problem, or a finite result when it has
    none. (An error for a file without a problem fails the test: refusing good input is a regression too.)"""
    arr, spacing = vol
    img = sitk.GetImageFromArray(arr, isVector=False)
    img.SetSpacing(spacing)
    f = tmp_path / 'r_flair.nii.gz'
    sitk.WriteImage(img, str(f))
    s = None
    if label:
        lab = (np.arange(arr.size).reshape(arr.shape) % 3 == 0).astype(np.uint8) * (4 if label == 'good' else 5)
        li = sitk.GetImageFromArray(lab, isVector=False)
        li.CopyInformation(img)
        s = tmp_path / 'r_seg.nii.gz'
        sitk.WriteImage(li, str(s))
    v = arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr   # a 4-D file holding one volume is that 3-D volume (read_image)
    problems = [m for m, bad in (                     # every problem the file has, by the words its error names it with
        ('3D volume', v.ndim != 3 or min(v.shape) < 2),
        ('NaN or Inf', np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all()),
        ('is constant', v.size and np.nanmin(v) == np.nanmax(v)),
        ('are not BraTS labels', label == 'bad'),
        ('no brain found', v.ndim == 3 and min(v.shape) >= 2 and int(brain_mask(v).sum()) < 8),
        ('brain intensities are constant', resample is None and v.ndim == 3 and min(v.shape) >= 2   # (resampling blurs the edge)
         and int(brain_mask(v).sum()) >= 8 and np.ptp(v[brain_mask(v)]) == 0)) if bad]
    try:
        out = read_image(f, 'FLAIR')
        assert out.GetDimension() == 3
        p = preprocess_case(f, s, spacing=resample)
    except BratsError as e:
        if not problems and resample and 'no brain voxel left after resampling' in str(e): return   # tiny volumes at 2 mm
        assert any(m in str(e) for m in problems) and str(f.parent) in str(e), (problems, str(e))
        return
    expected = problems[0] if problems else None
    assert expected is None, f"accepted a file that should be refused ({expected})"
    x = sitk.GetArrayViewFromImage(p.image)
    assert x.dtype == np.float32 and np.all(np.isfinite(x))
    if s is not None: assert set(np.unique(sitk.GetArrayViewFromImage(p.label))) <= {0, 1}


# ---------------------------------------------------------------- outputs

def test_output_folder_not_writable(tmp_path, phantom):
    data = tmp_path / 'data'
    put_case(data, *phantom)
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    with pytest.raises(BratsError, match='cannot create output folder'): preprocess_dataset(data, blocker / 'out', progress=False)
    with pytest.raises(BratsError, match='cannot create output folder'): write_image(phantom[0], blocker / 'x' / 'y.nii.gz')
    with pytest.raises(BratsError, match='must not lie inside the data folder'): preprocess_dataset(data, data / 'prep', progress=False)
    msg = error_lines(cli('preprocess', data, blocker / 'out'), 'preprocess')
    assert 'cannot create output folder' in msg and str(blocker) in msg
    assert blocker.read_text() == 'not a folder'


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize('how', ['block', 'write_json', 'write_image', 'checkpoint'])
def test_disk_full(tmp_path, monkeypatch, phantom, how):
    out = tmp_path / 'out'
    out.mkdir()
    target = out / {'block': 'a.bin', 'write_json': 'a.json', 'write_image': 'a.nii.gz', 'checkpoint': 'checkpoint_last.pt'}[how]
    target.write_bytes(b'previous content')

    with pytest.raises(BratsError, match='No space left on device') as e:
        if how == 'block':
            with atomic_path(target) as tmp:
                tmp.write_bytes(b'partial')
                _enospc()
        elif how == 'write_json':
            real = Path.write_text
            monkeypatch.setattr(Path, 'write_text', lambda self, *a, **k: (real(self, 'partial'), _enospc()))
            write_json({'a': 1}, target)
        elif how == 'write_image':
            monkeypatch.setattr(bio.sitk, 'WriteImage', lambda img, path, *a: (Path(path).write_bytes(b'partial'), _enospc()))
            write_image(phantom[0], target)
        else:
            from brats_ssl.train import build, save_checkpoint
            cfg = TrainConfig(method='unet', iterations=2, **TINY)
            model, method, opt = build(cfg)
            real = Path.write_bytes                      # the checkpoint's bytes, built in memory, fail half written
            monkeypatch.setattr(Path, 'write_bytes', lambda self, data: (real(self, b'partial'), _enospc()))
            save_checkpoint(target, model, method, opt, 1, cfg)
    assert str(target) in str(e.value)
    assert target.read_bytes() == b'previous content'
    assert sorted(p.name for p in out.iterdir()) == [target.name]


# ---------------------------------------------------------------- training runs and checkpoints

@pytest.fixture(scope='module')
def prep(tmp_path_factory):
    d = tmp_path_factory.mktemp('rel')
    write_phantoms(d / 'data', n=4, seed=0, size=SIZE, spacing=SPACING)
    preprocess_dataset(d / 'data', d / 'prep', workers=1, progress=False)
    split = split_cases(list_preprocessed(d / 'prep'), 1, 1, 0, seed=0)
    (d / 'split.json').write_text(json.dumps(split))
    return d


@pytest.fixture(scope='module')
def mt_run(prep):
    split = json.loads((prep / 'split.json').read_text())
    cfg = TrainConfig(method='mt', iterations=2, **TINY)
    train(prep / 'prep', prep / 'mt', split, cfg, progress=False)
    return prep / 'mt'


def test_volume_smaller_than_patch_is_padded(prep, tmp_path):
    split = json.loads((prep / 'split.json').read_text())
    x, y = load_volumes(prep / 'prep', split['labelled'])[0]
    assert any(s < 32 for s in x.shape)
    ds = PatchDataset([(x, y)], (32, 32, 32), seed=0)
    xp, yp = ds[0]
    assert xp.shape == (1, 32, 32, 32) and yp.shape == (32, 32, 32)
    cfg = TrainConfig(method='unet', iterations=2, **{**TINY, 'patch': (32, 32, 32)})
    s = train(prep / 'prep', tmp_path / 'run', split, cfg, progress=False)
    assert load_checkpoint(s['checkpoint_last'])['iteration'] == 2 and 0 <= s['best_dice'] <= 1


def test_bad_checkpoints(mt_run, prep, tmp_path):
    last = mt_run / 'checkpoint_last.pt'
    good = last.read_bytes()
    trunc = tmp_path / 'trunc.pt'
    trunc.write_bytes(good[:len(good) // 2])
    with pytest.raises(BratsError, match='cannot read checkpoint') as e: load_checkpoint(trunc)
    assert str(trunc) in str(e.value)
    (tmp_path / 'junk.pt').write_bytes(b'junk' * 100)
    with pytest.raises(BratsError, match='cannot read checkpoint'): load_checkpoint(tmp_path / 'junk.pt')
    torch.save({'a': 1}, tmp_path / 'foreign.pt')
    with pytest.raises(BratsError, match='not a brats_ssl checkpoint'): load_checkpoint(tmp_path / 'foreign.pt')
    msg = error_lines(cli('predict', trunc, prep / 'data', tmp_path / 'pred', fresh=True), 'predict')
    assert 'cannot read checkpoint' in msg and str(trunc) in msg
    assert not (tmp_path / 'pred').exists() or not list((tmp_path / 'pred').iterdir())
    # another architecture: the config says (8, 16, 32) but the weights are (4, 8, 16)
    state = load_checkpoint(last)
    state['config']['filters'] = (8, 16, 32)
    with pytest.raises(BratsError, match='do not fit a UNet3D'): model_from_checkpoint(state)
    assert last.read_bytes() == good


@pytest.mark.parametrize('change', [dict(method='uamt'), dict(method='unet'), dict(filters=(8, 16, 32))])
def test_resume_with_other_config_is_refused(mt_run, prep, tmp_path, change):
    run = tmp_path / 'run'
    shutil.copytree(mt_run, run)
    before = snapshot(run)
    split = json.loads((prep / 'split.json').read_text())
    cfg = TrainConfig(**{**asdict(TrainConfig(method='mt', iterations=2, **TINY)), **change})
    key = next(iter(change))
    with pytest.raises(BratsError, match=f'cannot resume with a different configuration \\(differs in: {key}\\)'):
        train(prep / 'prep', run, split, cfg, resume=True, progress=False)
    assert snapshot(run) == before
    if change.get('method') == 'uamt':
        p = brats_ssl('train', prep / 'prep', run, '--method', change['method'], '--split', prep / 'split.json', '--resume',
                      '--iterations', 2, '--val-every', 2, *TINY_ARGS)
        msg = error_lines(p, 'train')
        assert 'differs in: method' in msg and 'checkpoint_last.pt' in msg
        assert snapshot(run) == before


def test_predict_with_mt_checkpoint_and_rerun_after_interruption(mt_run, prep, tmp_path):
    pred = tmp_path / 'pred'
    files = predict_dataset(mt_run / 'checkpoint_last.pt', prep / 'data', pred, overlap=0, progress=False)
    assert len(files) == 4 and all(f.exists() for f in files)
    files[1].unlink()                                            # as if interrupted before the second case
    mtimes = {f: f.stat().st_mtime_ns for f in files if f.exists()}
    time.sleep(0.02)
    p = cli('predict', mt_run / 'checkpoint_last.pt', prep / 'data', pred, '--overlap', 0, '--device', 'cpu')
    assert p.returncode == 0, p.stderr
    assert files[1].exists() and {f: f.stat().st_mtime_ns for f in mtimes} == mtimes
    assert no_temp_files(pred)


# ---------------------------------------------------------------- interruption, resume, reproducibility

def _wait_for(path, proc, timeout=90):
    t = time.time()
    while not path.exists():
        if proc.poll() is not None: raise AssertionError(f'process ended ({proc.returncode}) before {path} appeared: {proc.stderr.read()[-2000:]}')
        if time.time() - t > timeout: raise AssertionError(f'{path} did not appear')
        time.sleep(0.005)


def _weights(ckpt):
    st = load_checkpoint(ckpt)
    return st['iteration'], st['model'], st['method']['teacher']


def _train_args(prep, out, iterations):
    return ['train', prep / 'prep', out, '--method', 'mt', '--split', prep / 'split.json', '--iterations', iterations,
            '--val-every', 2, *TINY_ARGS]


def test_sigkill_then_resume_gives_the_same_weights(prep, tmp_path):
    n = 16
    ref = brats_ssl(*_train_args(prep, tmp_path / 'ref', n))
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / 'run'
    proc = subprocess.Popen([*RUN, *map(str, _train_args(prep, run, n))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(run / 'checkpoint_last.pt', proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(run / 'checkpoint_last.pt')['iteration'] < n
    p = brats_ssl(*_train_args(prep, run, n), '--resume')
    assert p.returncode == 0, p.stderr
    it_a, model_a, teacher_a = _weights(tmp_path / 'ref' / 'checkpoint_last.pt')
    it_b, model_b, teacher_b = _weights(run / 'checkpoint_last.pt')
    assert it_a == it_b == n
    for a, b in ((model_a, model_b), (teacher_a, teacher_b)):
        assert a.keys() == b.keys()
        for k in a: assert torch.equal(a[k], b[k]), k
    log = (run / 'log.csv').read_text().splitlines()
    assert len(log) == n + 1 and [int(r.split(',')[0]) for r in log[1:]] == list(range(n))


def test_sigint_exits_130_and_leaves_a_resumable_checkpoint(prep, tmp_path):
    run = tmp_path / 'run'
    # the child starts with Ctrl-C at its default, whatever this process inherited (under `nohup` or `pytest &` in a
    # script SIGINT is ignored, and a child would inherit that: the one way this test failed)
    proc = subprocess.Popen([*RUN, *map(str, _train_args(prep, run, 5000))], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(run / 'checkpoint_last.pt', proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert 'Traceback' not in err
    assert [l for l in err.splitlines() if 'brats-ssl train' in l] == ['brats-ssl train: interrupted']
    assert no_temp_files(run)
    st = load_checkpoint(run / 'checkpoint_last.pt')
    k = st['iteration']
    assert 2 <= k < 5000
    cfg = TrainConfig.from_dict(json.loads((run / 'config.json').read_text())['config'])
    # Ctrl-C waits for the running iteration: the checkpoint holds exactly the state after `k` iterations (batch-norm
    # statistics and teacher included), and resuming it gives what an uninterrupted run gives
    ref = tmp_path / 'ref'
    train(prep / 'prep', ref, st['split'], cfg, progress=False, stop_at=k)
    for r in (run, ref): train(prep / 'prep', r, st['split'], cfg, resume=True, progress=False, stop_at=k + 2)
    it_a, model_a, teacher_a = _weights(run / 'checkpoint_last.pt')
    it_b, model_b, teacher_b = _weights(ref / 'checkpoint_last.pt')
    assert it_a == it_b == k + 2
    for a, b in ((model_a, model_b), (teacher_a, teacher_b)):
        for key in a: assert torch.equal(a[key], b[key]), key



def test_inherited_ignored_sigint_is_told(prep, tmp_path):
    "A process started with SIGINT ignored cannot be stopped with Ctrl-C: train says so, and how to stop it instead."
    proc = subprocess.run([*RUN, *map(str, _train_args(prep, tmp_path / 'run', 2))], capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'this process ignores Ctrl-C' in proc.stderr and 'kill ' in proc.stderr
    quiet = subprocess.run([*RUN, *map(str, _train_args(prep, tmp_path / 'run2', 2))], capture_output=True, text=True,
                           timeout=120, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert quiet.returncode == 0 and 'ignores Ctrl-C' not in quiet.stderr

def test_reproducibility(prep, tmp_path):
    ids = [f'C{i}' for i in range(10)]
    assert split_cases(ids, 3, 2, 2, seed=5) == split_cases(ids, 3, 2, 2, seed=5) != split_cases(ids, 3, 2, 2, seed=6)
    split = json.loads((prep / 'split.json').read_text())
    vols = load_volumes(prep / 'prep', split['labelled'] + split['val'])
    a, b = PatchDataset(vols, (16, 16, 16), seed=3, fg_prob=0.5), PatchDataset(vols, (16, 16, 16), seed=3, fg_prob=0.5)
    for i in (0, 1, 17, 10**9):
        assert a.params(i) == b.params(i)
        assert all(torch.equal(u, v) for u, v in zip(a[i], b[i]))
    assert any(a.params(i) != PatchDataset(vols, (16, 16, 16), seed=4).params(i) for i in range(4))
    cfg = TrainConfig(method='mt', iterations=3, **TINY)
    for r in ('a', 'b'): train(prep / 'prep', tmp_path / r, split, cfg, progress=False)
    sa, sb = (load_checkpoint(tmp_path / r / 'checkpoint_last.pt') for r in ('a', 'b'))
    for k in sa['model']: assert torch.equal(sa['model'][k], sb['model'][k]), k
    for k in sa['method']['teacher']: assert torch.equal(sa['method']['teacher'][k], sb['method']['teacher'][k]), k
    conf = json.loads((tmp_path / 'a' / 'config.json').read_text())
    assert set(conf['config']) == {f.name for f in fields(TrainConfig)} and TrainConfig.from_dict(conf['config']) == cfg
    assert conf['split'] == split and conf['preprocess']['margin'] == 4
    env = conf['environment']
    assert env['torch'] == torch.__version__ and env['numpy'] == np.__version__ and env['SimpleITK'] and env['python'] and 'brats_ssl' in env
    # what the weights depend on beyond the versions: the CPU and the math libraries torch was built with
    assert env['cpu'] and env['cpu_capability'] and env['threads'] == torch.get_num_threads() and 'onednn' in env and 'mkl' in env
    if torch.backends.mkldnn.is_available(): assert env['onednn'][0].isdigit(), env['onednn']


def test_cli_warnings_survive_pythonwarnings_ignore(tmp_path, phantom):
    "What the command leaves out is told even where PYTHONWARNINGS=ignore quiets other libraries' warnings."
    import os, subprocess, sys
    flair, seg = phantom
    data = tmp_path / 'data'
    put_case(data, flair, seg)
    (data / 'C11').mkdir(); (data / 'C11' / 'C11_seg.nii.gz').write_bytes(b'')
    p = subprocess.run([sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())', 'preprocess', str(data),
                        str(tmp_path / 'prep'), '--workers', '1'], capture_output=True, text=True, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert p.returncode == 0 and 'brats-ssl preprocess: warning: not used:' in p.stderr and 'C11_seg.nii.gz' in p.stderr, p.stderr


def test_viewers_say_what_to_install():
    "The package runs without the widget libraries; the viewers name the extra to install when they are missing."
    import subprocess, sys
    code = ("import builtins; real = builtins.__import__\n"
            "def imp(name, *a, **k):\n    if name.split('.')[0] in ('ipywidgets', 'itkwidgets'): raise ModuleNotFoundError(name=name.split('.')[0])\n    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\nimport numpy as np\nfrom brats_ssl.viz import slice_viewer, view_3d\nfrom brats_ssl.io import BratsError\n"
            "for f in (lambda: slice_viewer(np.zeros((4, 4, 4)), {}), lambda: view_3d(np.zeros((4, 4, 4)), {})):\n"
            "    try: f(); print('no error')\n    except BratsError as e: print(e)\n")
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and len(lines) == 2 and all('pip install -e ".[viewer]"' in l for l in lines), (p.stdout, p.stderr)
