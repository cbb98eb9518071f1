"""Screen: are the jumps of a batch-norm UNet3D's validation curve its running statistics? Each run's last and chosen
checkpoints are scored on their validation patients twice: with the running batch-norm statistics that training left,
and with statistics recomputed over 100 batches of 2 training patches (drawn as in training, weights fixed, dropout off:
"precise BN"). Paired over run-patient pairs; rows kept in screens/precise_bn_val.csv. Test patients are not touched.

    python benchmarks/experiments/screen_precise_bn.py RUN [RUN ...]    # run folders: fold*/runs/unet_seed0, unet_final
"""
import argparse, copy, csv, json
from pathlib import Path
import torch
from brats_ssl.data import PatchDataset, load_volumes
from brats_ssl.stats import paired_comparison, p_text
from brats_ssl.train import TrainConfig, load_checkpoint, model_from_checkpoint, validate


def precise_bn(model, volumes, cfg: TrainConfig, batches: int = 100, seed: int = 12345):
    "A copy of `model` whose batch-norm statistics are the plain mean over `batches` batches of training patches."
    m = copy.deepcopy(model).eval()
    ds = PatchDataset(volumes, cfg.patch, seed=seed, fg_prob=cfg.fg_prob, intensity=cfg.intensity)
    for b in m.modules():
        if isinstance(b, torch.nn.BatchNorm3d): b.reset_running_stats(); b.momentum = None; b.train()   # cumulative mean
    with torch.no_grad():
        for k in range(batches): m(torch.stack([ds[2 * k + j][0] for j in range(2)]))
    return m.eval()


p = argparse.ArgumentParser(description=__doc__.splitlines()[0]); p.add_argument('runs', type=Path, nargs='+')
rows = []
for run in p.parse_args().runs:
    prep = next(q/'prep' for q in run.parents if (q/'prep').is_dir())
    split = json.loads((run/'split.json').read_text())
    label = f"{run.parents[2].name}/{run.parents[1].name}" if run.parent.name == 'runs' else f"{run.parent.name}/final"
    train_volumes, val = load_volumes(prep, split['labelled']), {c: load_volumes(prep, [c])[0] for c in split['val']}
    for ck in ('last', 'best'):
        st = load_checkpoint(run/f'checkpoint_{ck}.pt'); cfg = TrainConfig.from_dict(st['config']); model = model_from_checkpoint(st)
        for bn, m in (('running', model), ('precise', precise_bn(model, train_volumes, cfg))):
            rows += [dict(run=label, inputs='+'.join(cfg.modalities), checkpoint=ck, iteration=st['iteration'], bn=bn, case=c, **validate(m, [v], cfg.patch)) for c, v in val.items()]
out = Path(__file__).with_name('screens')/'precise_bn_val.csv'
with open(out, 'w', newline='') as f: w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
for ck in ('last', 'best'):
    for fam in sorted({r['inputs'] for r in rows}):
        pick = lambda bn: [dict(r, dice=r['none'], case=f"{r['run']}:{r['case']}") for r in rows if r['checkpoint'] == ck and r['bn'] == bn and r['inputs'] == fam]
        c = paired_comparison(pick('running'), pick('precise'), 'dice')
        print(f"{fam} {ck} checkpoints, precise - running BN statistics, Dice on validation patients ({c['n']} pairs): "
              f"{c['mean_a']:.3f} -> {c['mean_b']:.3f}, {c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], Wilcoxon p {p_text(c['p_value'])}")
