"""One step of the real-MRI recipe search: `reproduce` with --folds on the BraTS folder, for the given methods and settings,
then the same runs scored again with their last checkpoint and with each post-processing, so that the checkpoint choice
and the post-processing are measured, not assumed. Appends one line per variant to benchmarks/screens.csv
and keeps the per-patient rows in benchmarks/screens/NAME_per_case.csv.

    python benchmarks/screen.py NAME --data ../shared/data/brats18 --out /tmp/screens [--methods unet] [--set key=value ...]
"""
import argparse, ast, csv, json, time
from brats_ssl.io import default_data_dir
from pathlib import Path
from brats_ssl.pipeline import reproduce, predict_dataset
from brats_ssl.evaluate import evaluate_predictions, read_rows, summarise
from brats_ssl.stats import paired_comparison
from brats_ssl.io import find_cases

p = argparse.ArgumentParser()
p.add_argument('name'); p.add_argument('--data', default=str(default_data_dir()))
p.add_argument('--out', default='/tmp/screens'); p.add_argument('--budget', default='cpu-3mm')
p.add_argument('--methods', nargs='+', default=['unet']); p.add_argument('--folds', type=int, default=3)
p.add_argument('--set', nargs='*', default=[], help='key=value overrides (python literals)')
a = p.parse_args()
over = {}
for kv in a.set:
    k, v = kv.split('=', 1)
    try: over[k] = ast.literal_eval(v)
    except (ValueError, SyntaxError): over[k] = v
out = Path(a.out)/a.name
t0 = time.time()
reproduce(out, data=a.data, budget=a.budget, methods=tuple(a.methods), folds=a.folds, device='cpu', progress=False, **over)
minutes = (time.time() - t0) / 60
rows = read_rows(out/'per_case.csv')
thr = [r for r in rows if r['method'] == 'threshold']
res = []
for m in a.methods:
    variants = {'best+val-post': [r for r in rows if r['method'] == m]}
    # the last checkpoint, and each post-processing forced, predicted again from the same runs
    cases = {c.id: c for c in find_cases(a.data)}
    mirror = json.loads((out/'experiment.json').read_text())['settings']['mirror']   # as the budget predicts
    for ck in ('best', 'last'):
        for post in ('none', 'largest'):
            vr = []
            for fold in sorted({r['fold'] for r in rows}):
                fdir = out/f"fold{fold}"
                split = json.loads((fdir/'split.json').read_text())
                src = fdir/'runs'/f"{m}_seed0"/f"checkpoint_{ck}.pt"
                import torch
                st = torch.load(src, weights_only=False); st['postprocess'] = post
                tmp = fdir/'screen'/f"{m}_{ck}_{post}.pt"; tmp.parent.mkdir(exist_ok=True); torch.save(st, tmp)
                pdir = fdir/'screen'/f"{m}_{ck}_{post}"
                predict_dataset(tmp, [cases[c] for c in split['test']], pdir, device='cpu', progress=False, mirror=mirror)
                vr += [dict(fold=fold, **x) for x in evaluate_predictions(pdir, a.data, progress=False, ids=split['test'])]
            variants[f'{ck}+{post}'] = vr
    for v, vr in variants.items():
        s = summarise(vr)
        c = paired_comparison(thr, vr, 'dice')
        res.append(dict(screen=a.name, method=m, variant=v, n=s['dice']['n'], dice=round(s['dice']['mean'], 4),
                        hd95=round(s['hd95']['mean'], 2), asd=round(s['asd']['mean'], 2), ravd=round(s['ravd']['mean'], 3),
                        dice_minus_threshold=round(c['mean_diff'], 4), p_wilcoxon=round(c['p_value'], 4),
                        threshold_dice=round(c['mean_a'], 4), minutes=round(minutes, 1), settings=' '.join([a.budget, *a.set])))
f = Path(__file__).with_name('screens.csv')
keep = Path(__file__).with_name('screens')/f"{a.name}_per_case.csv"      # the per-patient rows, for paired comparisons later
keep.parent.mkdir(exist_ok=True); keep.write_text((out/'per_case.csv').read_text())
new = not f.exists()
with open(f, 'a', newline='') as fh:
    w = csv.DictWriter(fh, list(res[0]))
    if new: w.writeheader()
    w.writerows(res)
for r in res: print(r)
