"""The models shipped in the package: each loads, matches its card's SHA-256, and predicts real patients it never
trained on with the Dice its card states, region by region (within the card's spread). Skipped where the package ships
no model or BRATS_DATA is absent."""
import numpy as np
import pytest
from brats_ssl.io import find_cases
from brats_ssl.pipeline import pretrained_models, pretrained_checkpoints, predict_dataset, card_text
from brats_ssl.evaluate import evaluate_predictions, region_key
from brats_ssl.train import load_checkpoint, TrainConfig

SHIPPED = pretrained_models()
NAMES = sorted(SHIPPED) or [pytest.param('none', marks=pytest.mark.skip(reason='this installation ships no model'))]


def test_the_package_ships_the_paper_task():
    assert 'flair-wt' in SHIPPED, sorted(SHIPPED)


@pytest.mark.parametrize('name', NAMES)
def test_card_says_what_a_user_needs(name):
    card = SHIPPED[name]
    for k in ('summary', 'training_data', 'command', 'cross_validation', 'against_the_floor', 'data_terms', 'clinical_use', 'figures'):
        assert card.get(k), k
    assert 'not for clinical use' in card['clinical_use'] and 'Menze' in card['data_terms'] and 'Bakas' in card['data_terms']
    assert f"--model {name}" in card['command'], card['command']          # the command that remakes it
    st = load_checkpoint(pretrained_checkpoints(name)[0])
    cfg = TrainConfig.from_dict(st['config'])
    assert ('test-time mirroring' in card['output']) == st['mirror']      # the card says how `predict` runs it by default
    f = card['figures']
    assert f['patients'] >= 8
    for g in cfg.regions:                                         # every region the model outputs has its figures
        assert 0 < f[f"{region_key('dice', g)}_mean"] <= 1 and f[f"{region_key('dice', g)}_std"] > 0, (g, f)
    assert sum(p.stat().st_size for p in pretrained_checkpoints(name)) < 5 * 2**20          # a few MB at most
    text = card_text(card)
    assert name in text and card['cross_validation'] in text


@pytest.mark.parametrize('name', NAMES)
def test_shipped_model_on_patients_it_never_trained_on(name, brats_root, tmp_path):
    ck = pretrained_checkpoints(name)
    st = load_checkpoint(ck[0])
    cfg = TrainConfig.from_dict(st['config'])
    assert 'optimizer' not in st
    val = st['split']['val']                                      # the 3 patients that chose its checkpoint, never trained on
    assert not set(val) & set(st['split']['labelled'])
    cases = [c for c in find_cases(brats_root) if c.id in set(val)]
    if len(cases) < len(val): pytest.skip(f"BRATS_DATA lacks the model's validation patients {val}")
    predict_dataset(ck, cases, tmp_path, progress=False)
    rows = evaluate_predictions(tmp_path, brats_root, ids=val, progress=False, regions=cfg.regions)
    f = SHIPPED[name]['figures']
    for g in cfg.regions:                                         # the card's cross-validated Dice, within its spread
        k = region_key('dice', g)
        dice = np.mean([r[k] for r in rows])
        assert dice >= f[f"{k}_mean"] - 2 * f[f"{k}_std"], (g, dice, f)
    assert all(r['dice'] > 0.5 for r in rows), rows               # the whole tumour found in each


def _stress():
    "benchmarks/stress.py, whose perturbations the stress test applies (one implementation of them)."
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location('stress', Path(__file__).resolve().parents[1]/'benchmarks'/'stress.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('name', NAMES)
def test_card_names_its_prediction_settings(name):
    card, st = SHIPPED[name], load_checkpoint(pretrained_checkpoints(name)[0])
    assert f"post-processing {st['postprocess']}" in card['output'] or f"post-processing '{st['postprocess']}'" in card['output'], card['output']
    assert ('N4' in card['input']) == bool(st['preprocess'].get('n4')), card['input']
    assert 'stress.py' in card['stress_test'] and 'per site' in card['sites']


@pytest.mark.parametrize('name', NAMES)
def test_a_second_lesion_is_kept(name, brats_root, tmp_path):
    """A shared patient with its tumour mirrored into the other hemisphere, predicted as `brats-ssl predict --pretrained`
    does (the model's own settings): both lesions are found, each more than half of it."""
    import SimpleITK as sitk
    from brats_ssl.io import read_case, read_modality, region_levels
    from brats_ssl.preprocess import brain_mask
    stress = _stress()
    case = next(c for c in find_cases(brats_root) if c.id == 'Brats18_CBICA_ABM_1')
    flair, seg = read_case(case)
    imgs = {'flair': flair, **{m: read_modality(case, m) for m in ('t1', 't1ce', 't2')}}
    arrays = {m: sitk.GetArrayFromImage(im).astype(np.float32) for m, im in imgs.items()}
    seg_a = sitk.GetArrayFromImage(seg)
    out, two, second = stress.perturb('mirror', arrays, seg_a, brain_mask(arrays['flair']), np.random.default_rng(0))
    assert second.sum() > 10000                                    # a real second lesion (the tumour has about 49 mL)
    d = tmp_path/'data'/case.id; d.mkdir(parents=True)
    for m, x in out.items():
        im = sitk.GetImageFromArray(x); im.CopyInformation(imgs[m]); sitk.WriteImage(im, str(d/f"{case.id}_{m}.nii.gz"))
    predict_dataset(pretrained_checkpoints(name), tmp_path/'data', tmp_path/'pred', progress=False)
    pred = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path/'pred'/f"{case.id}_pred.nii.gz"))) > 0
    first = region_levels(seg_a, case.labels) > 0
    assert pred[first].mean() > 0.5 and pred[second].mean() > 0.5, (pred[first].mean(), pred[second].mean())
