"""The FLAIR whole-tumour model meant to ship with the package: its recipe cross-validated on the shared patients, and
the final model.

    python benchmarks/flair_model.py --data ../shared/data/brats18 --out /tmp/flair_cv [--fold 1 2]
    python benchmarks/flair_model.py --data ../shared/data/brats18 --out /tmp/flair_final --final

The recipe is the one that did best on unseen patients so far: 2 mm, UNet3D(8..64), 64^3 patches, batch norm,
learning rate 0.02, a third of the labelled patches centred on tumour, no test-time mirroring, 4000 iterations,
validation every 250. Cross-validation (`cpu-3mm`'s three folds): per fold every non-test patient is labelled but 3,
the validation patients, which choose the checkpoint and the post-processing; each fold's test patients are only
predicted and scored, beside the no-learning threshold tuned on the fold's other patients. `--fold` runs only some
folds (one call per fold, as nnU-Net). `--final` trains the model that ships the same way on all the patients: all
labelled but 3 (seeded), which choose its checkpoint; the cross-validation is what estimates how well it does on
patients it never saw. Both resume where they stopped (rerun the same command). Finished folds' validation curves
and per-patient rows are copied to benchmarks/flair_model/ (the small files kept in the repository).
"""
from __future__ import annotations
import argparse, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import default_data  # noqa: E402

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--out', type=Path, default=Path('/tmp/flair_cv'))
    ap.add_argument('--fold', type=int, nargs='+', default=None, help='only these folds (default: all three)')
    ap.add_argument('--final', action='store_true', help='train the model that ships (all patients; 3 of them choose the checkpoint)')
    ap.add_argument('--iterations', type=int, default=None); ap.add_argument('--device', default='auto')
    a = ap.parse_args(argv)
    keep = Path(__file__).resolve().parent/'flair_model'
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
