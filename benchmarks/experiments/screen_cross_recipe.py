"""Screen: would the two shipped recipes together find the whole tumour better than either alone? They fail mostly on
different patients. For each pair of runs trained on the same split (a `flair-wt` run and a `multimodal-regions` run of
the same fold, or the two final runs), each validation patient's whole-tumour probability is predicted by each (as
each predicts: `flair-wt` mirrored, the regions' WT without) and by their mean; Dice after keeping the largest
component (the post-processing both final models chose). Paired over run-patient pairs; rows kept in
screens/cross_recipe_val.csv. Test patients are not touched.

    python benchmarks/experiments/screen_cross_recipe.py FLAIR_RUN:REGIONS_RUN [...]    # run folders: fold*/runs/unet_seed0, unet_final
"""
import argparse, csv, json
from pathlib import Path
import numpy as np
from brats_ssl.data import load_volumes
from brats_ssl.infer import sliding_window, postprocess, region_probabilities
from brats_ssl.metrics import dice
from brats_ssl.stats import paired_comparison, p_text
from brats_ssl.train import TrainConfig, load_checkpoint, model_from_checkpoint

p = argparse.ArgumentParser(description=__doc__.splitlines()[0]); p.add_argument('pairs', nargs='+', metavar='FLAIR_RUN:REGIONS_RUN')
rows = []
for pair in p.parse_args().pairs:
    runs = [Path(r) for r in pair.split(':')]
    val = [json.loads((r/'split.json').read_text())['val'] for r in runs]
    if val[0] != val[1]: raise SystemExit(f"{pair}: the two runs have different validation patients {val}")
    label = f"{runs[1].parents[1].name}" if runs[1].parent.name == 'runs' else 'final'
    wt = {}
    for k, run in enumerate(runs):
        prep = next(q/'prep' for q in run.parents if (q/'prep').is_dir())
        st = load_checkpoint(run/'checkpoint_best.pt'); cfg = TrainConfig.from_dict(st['config']); model = model_from_checkpoint(st)
        for c in val[0]:
            x, y = load_volumes(prep, [c])[0]
            pr = sliding_window(model, x, cfg.patch, 0.5, mirror=k == 0)
            wt[k, c] = ((pr[1] if pr.shape[0] == 2 else region_probabilities(pr)[0]).numpy(), np.asarray(y) > 0)
    for c in val[0]:
        (pf, yf), (pm, ym) = wt[0, c], wt[1, c]
        if pf.shape != pm.shape or not (yf == ym).all(): raise SystemExit(f"{pair}, {c}: the two runs' grids differ")
        score = lambda prob: dice(postprocess(prob > 0.5, 'largest'), yf)
        rows.append(dict(run=label, case=c, flair_wt=score(pf), regions=score(pm), both=score((pf + pm) / 2)))
out = Path(__file__).with_name('screens')/'cross_recipe_val.csv'
with open(out, 'w', newline='') as f: w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
keyed = lambda k: [dict(case=f"{r['run']}:{r['case']}", dice=r[k]) for r in rows]
for k in ('flair_wt', 'regions'):
    c = paired_comparison(keyed(k), keyed('both'), 'dice')
    print(f"mean of the two - {k} alone, WT Dice on validation patients ({c['n']} run-patient pairs): {c['mean_a']:.3f} -> {c['mean_b']:.3f}, "
          f"{c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], Wilcoxon p {p_text(c['p_value'])}")
