"""Ensembles: several checkpoints (or the folds of a cross-validated run) predict as one, averaging their tumour probabilities."""
import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from brats_ssl.io import BratsError, find_cases
from brats_ssl.infer import predict_case, sliding_window, entropy_map, postprocess
from brats_ssl.pipeline import predict_dataset, reproduce, resolve_checkpoints
from brats_ssl.preprocess import preprocess_case
from brats_ssl.train import load_checkpoint, model_from_checkpoint


@pytest.fixture(scope='module')
def cv_run(tmp_path_factory):
    "A tiny cross-validated run: two folds, one UNet3D checkpoint each."
    out = tmp_path_factory.mktemp('ens') / 'run'
    reproduce(out, budget='tiny', methods=['unet'], folds=2, device='cpu', progress=False)
    return out


def test_resolve(cv_run):
    paths = resolve_checkpoints(cv_run, 'unet')
    assert [p.parts[-4] for p in paths] == ['fold0', 'fold1'] and all(p.name == 'checkpoint_best.pt' for p in paths)
    with pytest.raises(BratsError, match='say which'): resolve_checkpoints(cv_run)
    with pytest.raises(BratsError, match="no fold holds a finished 'mt' run"): resolve_checkpoints(cv_run, 'mt')
    assert resolve_checkpoints([paths[0].parent]) == [paths[0]]


def test_ensemble_is_the_mean_of_the_probabilities(cv_run):
    paths = resolve_checkpoints(cv_run, 'unet')
    states = [load_checkpoint(p) for p in paths]
    models = [model_from_checkpoint(s) for s in states]
    case = find_cases(cv_run / 'data')[0]
    pre = preprocess_case(case.flair, None, **states[0]['preprocess'])
    patch = tuple(states[0]['config']['patch'])
    x = sitk.GetArrayViewFromImage(pre.image)
    probs = [sliding_window(m, x, patch, 0.5, 2, torch.device('cpu')) for m in models]
    mean = (probs[0] + probs[1]) / 2
    fg = pre.restore(mean[1:].sum(0).numpy().astype(np.float32), sitk.sitkLinear)
    want = postprocess(sitk.GetArrayViewFromImage(fg) > 0.5, 'largest').astype(np.uint8)
    mask, unc = predict_case(models, pre, [patch, patch], 0.5, 2, torch.device('cpu'), uncertainty=True, post='largest')
    assert np.array_equal(sitk.GetArrayViewFromImage(mask), want)
    want_unc = sitk.GetArrayFromImage(pre.restore(entropy_map(mean), sitk.sitkLinear))      # a copy: the image is a temporary
    np.testing.assert_allclose(sitk.GetArrayFromImage(unc), want_unc, atol=1e-6)
    single, _ = predict_case(models[0], pre, patch, 0.5, 2, torch.device('cpu'))
    alone, _ = predict_case(models[:1], pre, [patch], 0.5, 2, torch.device('cpu'))
    assert np.array_equal(sitk.GetArrayViewFromImage(single), sitk.GetArrayViewFromImage(alone))   # a list of one is the model


def test_predict_dataset_ensemble_and_refusals(cv_run, tmp_path):
    paths = resolve_checkpoints(cv_run, 'unet')
    files = predict_dataset(paths, cv_run / 'data', tmp_path / 'pred', device='cpu', progress=False, uncertainty=True)
    assert len(files) == len(find_cases(cv_run / 'data'))
    rec = json.loads((tmp_path / 'pred' / 'predictions.json').read_text())
    made = next(iter(rec.values()))['made_by']
    assert isinstance(made['checkpoint_sha256'], list) and len(made['checkpoint_sha256']) == 2
    # a changed member is noticed: its hash differs, so the old files are not reused as its predictions
    st = load_checkpoint(paths[1])
    st['preprocess'] = {**st['preprocess'], 'spacing': 2.0}
    odd = tmp_path / 'odd.pt'
    torch.save(st, odd)
    with pytest.raises(BratsError, match=r'differently preprocessed data \(spacing 2.0 vs None\)'):
        predict_dataset([paths[0], odd], cv_run / 'data', tmp_path / 'pred2', device='cpu', progress=False)
    with pytest.raises(BratsError, match='not written by'):
        predict_dataset([paths[0]], cv_run / 'data', tmp_path / 'pred', device='cpu', progress=False)


def test_cli_ensemble(cv_run, tmp_path):
    p = subprocess.run([sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())', 'predict',
                        str(cv_run), str(cv_run / 'data'), str(tmp_path / 'pred'), '--method', 'unet'], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert 'ensemble of 2 checkpoints' in p.stdout and (tmp_path / 'pred' / 'predictions.json').exists()
