"""The model shipped in the package: it loads, matches its card's SHA-256, and predicts real patients it never trained on
with the Dice its card states (within the card's spread). Skipped where the package ships no model or BRATS_DATA is absent."""
import json
import numpy as np
import pytest
from brats_ssl.io import find_cases
from brats_ssl.pipeline import pretrained_models, pretrained_checkpoint, predict_dataset, card_text
from brats_ssl.evaluate import evaluate_predictions
from brats_ssl.train import load_checkpoint, TrainConfig

SHIPPED = pretrained_models()


@pytest.mark.skipif('flair-wt' not in SHIPPED, reason='this installation ships no flair-wt model')
def test_card_says_what_a_user_needs():
    card = SHIPPED['flair-wt']
    for k in ('summary', 'training_data', 'command', 'cross_validation', 'data_terms', 'clinical_use', 'figures'):
        assert card.get(k), k
    assert 'not for clinical use' in card['clinical_use'] and 'Menze' in card['data_terms'] and 'Bakas' in card['data_terms']
    f = card['figures']
    assert f['patients'] >= 8 and 0 < f['dice_mean'] <= 1 and f['dice_std'] > 0
    assert pretrained_checkpoint('flair-wt').stat().st_size < 5 * 2**20          # a few MB at most
    text = card_text(card)
    assert 'flair-wt' in text and card['cross_validation'] in text


@pytest.mark.skipif('flair-wt' not in SHIPPED, reason='this installation ships no flair-wt model')
def test_shipped_model_on_patients_it_never_trained_on(brats_root, tmp_path):
    ck = pretrained_checkpoint('flair-wt')
    st = load_checkpoint(ck)
    cfg = TrainConfig.from_dict(st['config'])
    assert 'optimizer' not in st and cfg.modalities == ('flair',) and cfg.regions == ('wt',)
    val = st['split']['val']                                      # the 3 patients that chose its checkpoint, never trained on
    cases = [c for c in find_cases(brats_root) if c.id in set(val)]
    if len(cases) < len(val): pytest.skip(f"BRATS_DATA lacks the model's validation patients {val}")
    predict_dataset(ck, cases, tmp_path, progress=False)
    rows = evaluate_predictions(tmp_path, brats_root, ids=val, progress=False)
    f = SHIPPED['flair-wt']['figures']
    dice = np.mean([r['dice'] for r in rows])
    assert dice >= f['dice_mean'] - 2 * f['dice_std'], (dice, f)   # the card's cross-validated Dice, within its spread
    assert all(r['dice'] > 0.5 for r in rows), rows
