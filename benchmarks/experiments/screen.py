"""One step of the real-MRI recipe search: `reproduce` with --folds on the BraTS folder, for the given methods and settings,
then the same runs scored again with their last checkpoint and with each post-processing, so that the checkpoint choice
and the post-processing are measured, not assumed. Appends one line per variant to benchmarks/experiments/screens.csv
and keeps the per-patient rows in benchmarks/experiments/screens/NAME_per_case.csv.

Each line gives `val_dice`, the variant's mean Dice on the folds' validation patients (never a fold's test patient),
beside its test figures: a screen is decided on `val_dice`; the test columns report what the choice gives on patients
no choice has seen. (Lines written before `val_dice` existed have it empty: those screens were compared on their test
figures, see benchmarks/README.md.)

    python benchmarks/experiments/screen.py NAME --data ../shared/data/brats18 --out /tmp/screens [--methods unet] [--set key=value ...]
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
    val_rows = {}
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
                predict_dataset(tmp, [cases[c] for c in split['test'] + split['val']], pdir, device='cpu', progress=False, mirror=mirror)
                vr += [dict(fold=fold, **x) for x in evaluate_predictions(pdir, a.data, progress=False, ids=split['test'])]
                val_rows.setdefault(f'{ck}+{post}', []).extend(dict(fold=fold, **x) for x in evaluate_predictions(pdir, a.data, progress=False, ids=split['val']))
            variants[f'{ck}+{post}'] = vr
    chosen = {f: torch.load(out/f"fold{f}"/'runs'/f"{m}_seed0"/'checkpoint_best.pt', weights_only=False).get('postprocess', 'none')
              for f in sorted({r['fold'] for r in rows})}               # the post-processing each fold's validation chose
    val_rows['best+val-post'] = [r for f, post in chosen.items() for r in val_rows[f'best+{post}'] if r['fold'] == f]
    for v, vr in variants.items():
        s = summarise(vr)
        c = paired_comparison(thr, vr, 'dice')
        vd = summarise(val_rows[v])['dice']['mean'] if val_rows.get(v) else float('nan')
        res.append(dict(screen=a.name, method=m, variant=v, n=s['dice']['n'], val_dice=round(vd, 4), dice=round(s['dice']['mean'], 4),
                        hd95=round(s['hd95']['mean'], 2), asd=round(s['asd']['mean'], 2), ravd=round(s['ravd']['mean'], 3),
                        dice_minus_threshold=round(c['mean_diff'], 4), p_wilcoxon=round(c['p_value'], 4),
                        threshold_dice=round(c['mean_a'], 4), minutes=round(minutes, 1), settings=' '.join([a.budget, *a.set])))
f = Path(__file__).with_name('screens.csv')
keep = Path(__file__).with_name('screens')/f"{a.name}_per_case.csv"      # the per-patient rows, for paired comparisons later
keep.parent.mkdir(exist_ok=True); keep.write_text((out/'per_case.csv').read_text())
old = list(csv.DictReader(open(f, newline=''))) if f.exists() else []
fields = list(dict.fromkeys([*res[0], *(old[0] if old else [])]))
with open(f, 'w', newline='') as fh:                 # older lines keep their values; a column they lack stays empty
    w = csv.DictWriter(fh, fields, restval='')
    w.writeheader(); w.writerows(old + res)
for r in res: print(r)
