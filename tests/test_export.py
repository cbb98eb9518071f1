"""The ONNX export of a checkpoint gives PyTorch's probabilities in onnxruntime on a real case."""
import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from brats_ssl.io import find_cases
from brats_ssl.preprocess import preprocess_case
from brats_ssl.train import load_checkpoint, model_from_checkpoint
from brats_ssl.pipeline import reproduce

ort = pytest.importorskip('onnxruntime', reason='the ONNX export needs onnx and onnxruntime: pip install -e ".[export]"')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp('exp') / 'run'
    reproduce(out, budget='tiny', methods=['unet'], device='cpu', progress=False)
    return out / 'runs' / 'unet_seed0' / 'checkpoint_best.pt'


def test_onnx_round_trip_on_a_real_case(checkpoint, brats_root, tmp_path):
    p = subprocess.run([sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())', 'export',
                        str(checkpoint), str(tmp_path / 'model.onnx')], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    sess = ort.InferenceSession(str(tmp_path / 'model.onnx'), providers=['CPUExecutionProvider'])
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta['brats_ssl.preprocess']) == load_checkpoint(checkpoint)['preprocess']
    case = find_cases(brats_root)[0]
    pre = preprocess_case(case.flair, **{**json.loads(meta['brats_ssl.preprocess']), 'spacing': 3.0})   # a real FLAIR at 3 mm
    m = int(meta['brats_ssl.size_multiple'])
    x = sitk.GetArrayFromImage(pre.image)
    x = np.pad(x, [(0, -n % m) for n in x.shape])[None, None]
    got = sess.run(None, {'image': x})[0]
    with torch.no_grad(): want = torch.softmax(model_from_checkpoint(load_checkpoint(checkpoint))(torch.from_numpy(x)), 1).numpy()
    assert got.shape == want.shape == (1, 2, *x.shape[2:])
    assert np.abs(got - want).max() < 1e-4


def test_export_names_what_to_install(checkpoint, tmp_path):
    code = ("import sys, builtins; real = builtins.__import__\n"
            "def imp(name, *a, **k):\n    if name == 'onnx' or name.startswith('onnx.'): raise ImportError(name)\n    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\nfrom brats_ssl.cli import main; sys.exit(main())")
    p = subprocess.run([sys.executable, '-c', code, 'export', str(checkpoint), str(tmp_path / 'm.onnx')], capture_output=True, text=True)
    assert p.returncode == 2 and 'pip install -e ".[export]"' in p.stderr and not (tmp_path / 'm.onnx').exists()


def test_shipped_models_export_their_mirroring(tmp_path):
    from brats_ssl.cli import main
    from brats_ssl.pipeline import pretrained_checkpoints, pretrained_models
    names = sorted(pretrained_models())
    if not names: pytest.skip('this installation ships no model')
    got = {}
    for name in names:
        ck = pretrained_checkpoints(name)
        assert main(['export', '--pretrained', name, str(tmp_path / f'{name}.onnx')]) == 0      # `brats-ssl export --pretrained NAME OUT`
        sess = ort.InferenceSession(str(tmp_path / f'{name}.onnx'), providers=['CPUExecutionProvider'])
        assert sess.get_modelmeta().custom_metadata_map['brats_ssl.checkpoint_sha256'] == pretrained_models()[name]['sha256'][0]
        got[name] = json.loads(sess.get_modelmeta().custom_metadata_map['brats_ssl.mirror'])
        assert got[name] == all(load_checkpoint(p)['mirror'] for p in ck), name
    assert got.get('flair-wt', True) is True, got                # its validation patients chose mirroring
    assert main(['export', '--pretrained', names[0], str(tmp_path / 'a.onnx'), 'b.onnx']) == 2                # OUT only, said in one line
    assert not (tmp_path / 'a.onnx').exists()
