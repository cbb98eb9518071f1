"""The FLAIR whole-tumour model meant to ship with the package: its recipe cross-validated on the shared patients.

    python benchmarks/flair_model.py --data ../shared/data/brats18 --out /tmp/flair_cv [--iterations 4000]

A cross-validated `reproduce` of the UNet3D alone with the recipe that did best on unseen patients so far: 2 mm,
UNet3D(8..64), 64^3 patches, batch norm, learning rate 0.02, a third of the labelled patches centred on tumour, no
mirroring; per fold every non-test patient labelled but 3 for validation (which choose the checkpoint and the
post-processing), evaluated every 250 iterations. Each fold's test patients are only predicted and scored, beside the
no-learning threshold tuned on the fold's other patients. It resumes where it stopped (rerun the same command).
Writes `<out>/fold*/table1.md`, `<out>/per_case.csv` when all folds are done, and copies each finished fold's
validation curve to benchmarks/flair_model/ (the small files kept in the repository).
"""
from __future__ import annotations
import argparse, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import default_data  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--out', type=Path, default=Path('/tmp/flair_cv'))
    ap.add_argument('--iterations', type=int, default=4000); ap.add_argument('--device', default='auto')
    a = ap.parse_args(argv)
    from brats_ssl.pipeline import reproduce
    reproduce(a.out, data=a.data, budget='cpu-3mm', methods=['unet'], device=a.device, progress=False,
              spacing=2.0, labelled=0.8, val=3, mirror=False, patch=(64, 64, 64), norm='batch', lr=0.02,
              iterations=a.iterations, val_every=250, fg_prob=0.33)
    keep = Path(__file__).resolve().parent/'flair_model'
    for v in sorted(a.out.glob('fold*/runs/unet_seed0/val.csv')):
        shutil.copy(v, keep/f"{v.parents[2].name}_val.csv")
    return 0


if __name__ == '__main__':
    sys.exit(main())
