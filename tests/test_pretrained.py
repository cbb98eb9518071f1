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
