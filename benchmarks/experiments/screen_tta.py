"""Screen: mirror test-time augmentation on the checkpoints of a cross-validated `reproduce` folder, without retraining.
Each test patient of each fold is predicted twice by the fold's best checkpoint, with its stored post-processing:
plainly, and as the mean of the softmax over the 8 flips of the three axes (nnU-Net's mirroring). Paired Wilcoxon
tests over all patients; one line per method is appended to benchmarks/experiments/screens.csv.

    python benchmarks/experiments/screen_tta.py /tmp/brats_ssl_real_mri --data ../shared/data/brats18 [--methods unet mt uamt]
"""
import argparse, csv, json, time
from brats_ssl.io import default_data_dir
from pathlib import Path
from brats_ssl.pipeline import predict_dataset
from brats_ssl.evaluate import evaluate_predictions, summarise
from brats_ssl.stats import paired_comparison
from brats_ssl.io import find_cases

p = argparse.ArgumentParser()
p.add_argument('run'); p.add_argument('--data', default=str(default_data_dir()))
p.add_argument('--methods', nargs='+', default=['unet', 'mt', 'uamt']); p.add_argument('--name', default='S6-tta')
a = p.parse_args()
run = Path(a.run)
cases = {c.id: c for c in find_cases(a.data)}
folds = sorted(run.glob('fold*'))
rows = {}
t0 = time.time()
for tta in (False, True):
    for m in a.methods:
        rows[m, tta] = []
        for fdir in folds:
            split = json.loads((fdir/'split.json').read_text())
            pdir = fdir/'screen'/f"{m}_{'tta' if tta else 'plain'}"
            predict_dataset(fdir/'runs'/f"{m}_seed0"/'checkpoint_best.pt', [cases[c] for c in split['test']], pdir,
                            device='cpu', progress=False, mirror=tta)
            rows[m, tta] += [dict(fold=fdir.name, **r) for r in evaluate_predictions(pdir, a.data, progress=False, ids=split['test'])]
        print(m, 'tta' if tta else 'plain', round(summarise(rows[m, tta])['dice']['mean'], 4), f"{time.time() - t0:.0f} s", flush=True)
res = []
for m in a.methods:
    s, c = summarise(rows[m, True]), paired_comparison(rows[m, False], rows[m, True], 'dice')
    h = paired_comparison(rows[m, False], rows[m, True], 'hd95')
    res.append(dict(screen=a.name, method=m, variant='best+val-post+mirror-tta', n=s['dice']['n'], dice=round(s['dice']['mean'], 4),
                    hd95=round(s['hd95']['mean'], 2), asd=round(s['asd']['mean'], 2), ravd=round(s['ravd']['mean'], 3),
                    dice_minus_threshold=None, p_wilcoxon=None, threshold_dice=None, minutes=round((time.time() - t0) / 60, 1),
                    settings=f"checkpoints of {run}; vs no TTA: dice {c['mean_diff']:+.4f} p={c['p_value']:.3f}, hd95 {h['mean_diff']:+.2f} p={h['p_value']:.3f}"))
    print(m, 'plain', round(c['mean_a'], 4), 'tta', round(c['mean_b'], 4), 'diff', round(c['mean_diff'], 4), 'p', round(c['p_value'], 4),
          '| hd95', round(h['mean_a'], 2), '->', round(h['mean_b'], 2), 'p', round(h['p_value'], 4))
f = Path(__file__).with_name('screens.csv')
with open(f, 'a', newline='') as fh: csv.DictWriter(fh, list(res[0])).writerows(res)
keep = Path(__file__).with_name('screens')/f"{a.name}_per_case.csv"
with open(keep, 'w', newline='') as fh:
    w = csv.DictWriter(fh, ['method', 'tta', *rows[a.methods[0], False][0]]); w.writeheader()
    for (m, tta), rr in rows.items(): w.writerows(dict(method=m, tta=tta, **r) for r in rr)
