"""The FLAIR whole-tumour model meant to ship with the package: its recipe cross-validated on the shared patients, and
the final model.

    python benchmarks/experiments/flair_model.py --data ../shared/data/brats18 --out /tmp/flair_cv [--fold 1 2]
    python benchmarks/experiments/flair_model.py --data ../shared/data/brats18 --out /tmp/flair_final --final
    python benchmarks/experiments/flair_model.py --out /tmp/flair_final --ship            # into brats_ssl/weights/, with its card

The recipe is the one that did best on unseen patients so far: 2 mm, UNet3D(8..64), 64^3 patches, batch norm,
learning rate 0.02, a third of the labelled patches centred on tumour, no test-time mirroring, 4000 iterations,
validation every 250. Cross-validation (`cpu-3mm`'s three folds): per fold every non-test patient is labelled but 3,
the validation patients, which choose the checkpoint and the post-processing; each fold's test patients are only
predicted and scored, beside the no-learning threshold tuned on the fold's other patients. `--fold` runs only some
folds (one call per fold, as nnU-Net). `--final` trains the model that ships the same way on all the patients: all
labelled but 3 (seeded), which choose its checkpoint; the cross-validation is what estimates how well it does on
patients it never saw. Both resume where they stopped (rerun the same command). Finished folds' validation curves
and per-patient rows are copied to benchmarks/experiments/flair_model/ (the small files kept in the repository). `--ship` writes
the final model's chosen checkpoint into the package as `flair-wt`, with a card whose cross-validated figures are
computed here from the kept per-patient rows, beside the no-learning floor's (benchmarks/experiments/threshold_floor.py, tuned
on each fold's non-test patients as the recipe's checkpoint and post-processing are).
"""
from __future__ import annotations
import argparse, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/, for common.py
from common import default_data  # noqa: E402

PREP = dict(spacing=2.0)
SPLIT = dict(labelled=0.8, val=3, mirror=False)
TRAIN = dict(patch=(64, 64, 64), norm='batch', lr=0.02, iterations=4000, val_every=250, fg_prob=0.33)


def final(data: Path, out: Path, device: str = 'auto', iterations: int | None = None) -> Path:
    "Train the shipped model: every labelled patient of `data` but 3 (seeded), which choose the checkpoint. Returns the run folder."
    from brats_ssl.io import find_cases
    from brats_ssl.data import split_cases
    from brats_ssl.preprocess import preprocess_dataset
    from brats_ssl.pipeline import BUDGETS
    from brats_ssl.train import TrainConfig, train
    ids = sorted(c.id for c in find_cases(data) if c.labelled)
    split = split_cases(ids, len(ids) - SPLIT['val'], SPLIT['val'], 0, seed=0)
    preprocess_dataset(data, out/'prep', progress=False, **PREP)
    cfg = TrainConfig(method='unet', seed=0, device=device, **{**BUDGETS['cpu-3mm']['train'], **TRAIN,
                                                              **({} if iterations is None else dict(iterations=iterations))})
    run = out/'unet_final'
    train(out/'prep', run, split, cfg, resume=(run/'checkpoint_last.pt').exists(), progress=False)
    return run


def card(run: Path) -> dict:
    "The card of the shipped model: what it is, how it was made, its cross-validated figures beside the floor's."
    import json, numpy as np
    from brats_ssl.evaluate import read_rows
    from brats_ssl.stats import paired_comparison
    from brats_ssl.train import load_checkpoint
    keep = Path(__file__).resolve().parent
    rows = [r for f in sorted((keep/'flair_model').glob('fold*_per_case.csv')) for r in read_rows(f) if r['method'] == 'unet']
    folds = sorted({r['fold'] for r in rows})
    ids = {r['case'] for r in rows}
    floor = [r for r in read_rows(keep/'threshold_floor'/'per_case.csv') if r['method'] == 'threshold_nontest' and r['case'] in ids]
    ms = lambda rs, k: f"{np.mean([r[k] for r in rs]):.3f} ± {np.std([r[k] for r in rs], ddof=1):.3f}" if k == 'dice' else \
        f"{np.mean([r[k] for r in rs]):.2f} ± {np.std([r[k] for r in rs], ddof=1):.2f} mm"
    diff = {k: paired_comparison(floor, rows, k) for k in ('dice', 'hd95')}
    st = load_checkpoint(run/'checkpoint_best.pt')
    val = json.loads((run/'split.json').read_text())['val']
    cv = (f"{len(ids)} patients, each the test patient of one of {len(folds)} folds (folds {', '.join(map(str, folds))} of "
          f"cpu-3mm's three; the same recipe, checkpoint and post-processing chosen on each fold's 3 validation patients): "
          f"Dice {ms(rows, 'dice')}, HD95 {ms(rows, 'hd95')}. The no-learning floor on the same patients (FLAIR z-score threshold, "
          f"its z, opening and components tuned on each fold's non-test patients): Dice {ms(floor, 'dice')}, HD95 {ms(floor, 'hd95')}. "
          f"Model - floor, paired: Dice {diff['dice']['mean_diff']:+.3f} [{diff['dice']['ci_low']:+.3f}, {diff['dice']['ci_high']:+.3f}] "
          f"(Wilcoxon p {diff['dice']['p_value']:.3f}), HD95 {diff['hd95']['mean_diff']:+.2f} mm [{diff['hd95']['ci_low']:+.2f}, "
          f"{diff['hd95']['ci_high']:+.2f}] (p {diff['hd95']['p_value']:.3f}); mean ± sample std over patients, bootstrap 95 % interval.")
    return dict(
        summary='FLAIR in, whole tumour out: a UNet3D(8..64) trained on the shared BraTS 2018 patients (the paper\'s task)',
        input='a skull-stripped FLAIR in any BraTS layout (or a manifest); preprocessed as in training: brain box, 2 mm, '
              'clipping at the brain\'s 0.5 and 99.5 percentiles, z-score on the brain',
        output='a uint8 whole-tumour mask on the FLAIR\'s grid (probability restored linearly, > 0.5; post-processing '
               f"{st.get('postprocess', 'none')!r}, chosen on validation patients)",
        training_data=f"BraTS 2018 training patients ({len(json.loads((run/'split.json').read_text())['labelled'])} labelled; "
                      f"3 validation patients, {', '.join(val)}, chose the checkpoint and the post-processing)",
        recipe='2 mm; 64^3 patches, a third centred on tumour; batch norm; SGD, learning rate 0.02, poly decay; 4000 iterations, '
               'validated every 250',
        checkpoint=f"iteration {st['iteration']} (validation Dice {st.get('best_dice', float('nan')):.3f} on the 3 validation patients)",
        command='python benchmarks/experiments/flair_model.py --data ../shared/data/brats18 --out /tmp/flair_final --final; '
                'python benchmarks/experiments/flair_model.py --out /tmp/flair_final --ship',
        cross_validation=cv,
        against_the_floor=('above the no-learning floor in Dice ' + ('on average only: the interval includes 0, so on new patients '
                           'it may do no better than a tuned FLAIR threshold' if diff['dice']['ci_low'] < 0 else
                           'on patients it never saw (the interval excludes 0)') + '; level with it in HD95'
                           if diff['hd95']['ci_low'] < 0 < diff['hd95']['ci_high'] else ''),
        figures=dict(patients=len(ids), folds=folds, dice_mean=round(float(np.mean([r['dice'] for r in rows])), 4),
                     dice_std=round(float(np.std([r['dice'] for r in rows], ddof=1)), 4),
                     hd95_mean=round(float(np.mean([r['hd95'] for r in rows])), 2),
                     floor_dice_mean=round(float(np.mean([r['dice'] for r in floor])), 4),
                     floor_hd95_mean=round(float(np.mean([r['hd95'] for r in floor])), 2)),
        data_terms='BraTS data are for research; cite Menze et al. 2015, IEEE TMI 34(10):1993-2024, and Bakas et al. 2017, '
                   'Sci Data 4:170117, and 2018, arXiv:1811.02629',
        limits='trained on 22 patients of one release; other scanners, protocols or pre-operative/post-operative status may '
               'need retraining; the cross-validation estimates the recipe on 14-15 training patients per fold',
        clinical_use='not for clinical use: a research model, not a medical device')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--out', type=Path, default=Path('/tmp/flair_cv'))
    ap.add_argument('--fold', type=int, nargs='+', default=None, help='only these folds (default: all three)')
    ap.add_argument('--final', action='store_true', help='train the model that ships (all patients; 3 of them choose the checkpoint)')
    ap.add_argument('--ship', action='store_true', help='write the final model (in --out) into the package with its card')
    ap.add_argument('--iterations', type=int, default=None); ap.add_argument('--device', default='auto')
    a = ap.parse_args(argv)
    keep = Path(__file__).resolve().parent/'flair_model'
    if a.ship:
        from brats_ssl.pipeline import ship_checkpoint, card_text, pretrained_models
        ship_checkpoint(a.out/'unet_final'/'checkpoint_best.pt', 'flair-wt', card(a.out/'unet_final'))
        print(card_text(pretrained_models()['flair-wt']))
        return 0
    if a.final:
        run = final(a.data, a.out, a.device, a.iterations)
        shutil.copy(run/'val.csv', keep/'final_val.csv')
        return 0
    from brats_ssl.pipeline import reproduce
    reproduce(a.out, data=a.data, budget='cpu-3mm', methods=['unet'], device=a.device, progress=False, fold=a.fold,
              **PREP, **SPLIT, **TRAIN, **({} if a.iterations is None else dict(iterations=a.iterations)))
    for v in sorted(a.out.glob('fold*/runs/unet_seed0/val.csv')):
        shutil.copy(v, keep/f"{v.parents[2].name}_val.csv")
    import csv
    rows = list(csv.DictReader(open(a.out/'per_case.csv')))
    for k in sorted({r['fold'] for r in rows}):
        with open(keep/f"fold{k}_per_case.csv", 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0])); w.writeheader(); w.writerows(r for r in rows if r['fold'] == k)
    return 0


if __name__ == '__main__':
    sys.exit(main())
