"""End to end through the `brats-ssl` command on a tiny synthetic set, and prediction on two real cases."""
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from brats_ssl.io import Geometry, find_cases


def brats_ssl(*args, check=True):
    "Run the command as a user would, in a fresh process."
    p = subprocess.run([sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())', *map(str, args)],
                       capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"brats-ssl {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr[-2000:]}")
    return p


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp('e2e')
    brats_ssl('phantom', d / 'data', '--n', 5, '--size', 40, 40, 28, '--spacing', 6, 6, 6)
    brats_ssl('preprocess', d / 'data', d / 'prep', '--workers', 2)
    brats_ssl('train', d / 'prep', d / 'run', '--method', 'uamt', '--labelled', 1, '--val', 1, '--test', 1,
              '--iterations', 3, '--patch', 32, 32, 32, '--filters', 4, 8, 16, '--val-every', 3, '--T', 2)
    return d


def test_train_predict_evaluate(tiny_run):
    d = tiny_run
    run = d / 'run'
    assert {'checkpoint_best.pt', 'checkpoint_last.pt', 'config.json', 'split.json', 'log.csv', 'val.csv'} <= {p.name for p in run.iterdir()}
    log = (run / 'log.csv').read_text().splitlines()
    assert log[0].split(',')[:4] == ['iteration', 'loss', 'ce', 'dice'] and len(log) == 4
    assert all(row.split(',')[7] != '' for row in log[1:]), 'UAMT logs the kept fraction'
    brats_ssl('predict', run / 'checkpoint_best.pt', d / 'data', d / 'pred', '--uncertainty')
    for case in find_cases(d / 'data'):
        pred = sitk.ReadImage(str(d / 'pred' / f'{case.id}_pred.nii.gz'))
        unc = sitk.ReadImage(str(d / 'pred' / f'{case.id}_uncertainty.nii.gz'))
        flair = sitk.ReadImage(str(case.flair))
        assert Geometry.of(pred) == Geometry.of(flair) == Geometry.of(unc)
        assert pred.GetPixelID() == sitk.sitkUInt8 and unc.GetPixelID() == sitk.sitkFloat32
        assert set(np.unique(sitk.GetArrayViewFromImage(pred))) <= {0, 1}
    out = brats_ssl('evaluate', d / 'pred', d / 'data', '--out', d / 'per_case.csv').stdout.splitlines()
    assert out[0].split() == ['case', 'Dice', 'RAVD', 'HD95', 'ASD'] and out[-2].startswith('mean') and len(out) == 8
    assert (d / 'per_case.csv').read_text().startswith('case,dice,ravd,hd95,asd')


def test_errors_are_one_line(tiny_run, tmp_path):
    d = tiny_run
    p = brats_ssl('train', d / 'prep', d / 'run', '--method', 'uamt', '--labelled', 1, '--val', 1, '--test', 1, check=False)
    assert p.returncode == 2 and 'holds a run already' in p.stderr and 'Traceback' not in p.stderr
    bad = tmp_path / 'bad' / 'X_1'
    bad.mkdir(parents=True)
    flair = sitk.ReadImage(str(find_cases(d / 'data')[0].flair))
    sitk.WriteImage(flair, str(bad / 'X_1_flair.nii.gz'))
    seg = sitk.Image(flair.GetSize(), sitk.sitkUInt8)
    seg.CopyInformation(flair)
    seg.SetOrigin((0, 0, 0))
    sitk.WriteImage(seg, str(bad / 'X_1_seg.nii.gz'))
    before = {f.name: f.read_bytes() for f in bad.iterdir()}
    p = brats_ssl('preprocess', bad.parent, tmp_path / 'prep', check=False)
    assert p.returncode == 2 and 'grids differ: origin' in p.stderr and 'X_1_seg.nii.gz' in p.stderr
    assert 'Traceback' not in p.stderr and {f.name: f.read_bytes() for f in bad.iterdir()} == before
    p = brats_ssl('--debug', 'preprocess', bad.parent, tmp_path / 'prep', check=False)
    assert p.returncode == 2 and 'Traceback' in p.stderr


def test_predict_real_cases(tiny_run, brats_root, tmp_path):
    "A checkpoint predicts two real BraTS cases onto their own 240 x 240 x 155 grids."
    cases = find_cases(brats_root)[:2]
    data = tmp_path / 'data'
    data.mkdir()
    for c in cases: (data / c.id).symlink_to(c.flair.parent, target_is_directory=True)
    brats_ssl('predict', tiny_run / 'run' / 'checkpoint_best.pt', data, tmp_path / 'pred', '--overlap', 0)
    for c in cases:
        pred = sitk.ReadImage(str(tmp_path / 'pred' / f'{c.id}_pred.nii.gz'))
        assert Geometry.of(pred) == Geometry.of(sitk.ReadImage(str(c.flair)))
        assert pred.GetSize() == (240, 240, 155) and pred.GetPixelID() == sitk.sitkUInt8
