"""The models that ship with the package: each one's recipe cross-validated on the shared patients, and the final model.

    python benchmarks/experiments/shipped_model.py --model NAME --data ../shared/data/brats18 --out /tmp/NAME_cv [--fold 1 2]
    python benchmarks/experiments/shipped_model.py --model NAME --data ../shared/data/brats18 --out /tmp/NAME_final --final
    python benchmarks/experiments/shipped_model.py --model NAME --out /tmp/NAME_final --ship    # into brats_ssl/weights/, with its card
    python benchmarks/experiments/shipped_model.py --model NAME --report                       # the kept cross-validation, as a table
    python benchmarks/experiments/shipped_model.py --model NAME --screen-mirror RUN [RUN ...]   # mirroring or not, on validation patients
    python benchmarks/experiments/shipped_model.py --model NAME --screen-postprocess RUN [RUN ...]  # each post-processing, likewise
    python benchmarks/experiments/shipped_model.py --model NAME ... --seed 1                    # the same runs with another training seed
    python benchmarks/experiments/shipped_model.py --model NAME --screen-ensemble RUN:RUN [...]  # the seeds' runs alone and together, on validation patients

NAME is `flair-wt` (FLAIR in, whole tumour out: the paper's task) or `multimodal-regions` (FLAIR, T1, T1ce and T2 in;
whole tumour, tumour core and enhancing tumour out). Both use the recipe that did best on unseen patients so far: 2 mm,
UNet3D(8..64), 64^3 patches, batch norm, learning rate 0.02, a third of the labelled patches centred on tumour,
validation every 250 iterations, 4000 iterations (`multimodal-regions` was run at 2000 and 4000, and its validation
patients chose 4000: `regions_model/2000_iterations/`); for the regions the checkpoint and the post-processing are
chosen on the mean validation Dice of WT, TC and ET. `flair-wt` predicts with the mean over the 8 flips of the three
axes (test-time mirroring), `multimodal-regions` without: `--screen-mirror` scores both ways
on the validation patients of the given runs (each one's chosen checkpoint and post-processing) and keeps the rows
(`<keep>/mirror_val.csv`), which is where that choice was made.

Cross-validation (`cpu-3mm`'s three folds): per fold every non-test patient is labelled but 3, the validation patients,
which choose the checkpoint and the post-processing; each fold's test patients are only predicted and scored, beside
the no-learning threshold tuned on the fold's other patients. `--fold` runs only some folds (one call per fold, as
nnU-Net; separate `--out` folders can run side by side). `--final` trains the model that ships the same way on all the
patients: all labelled but 3 (seeded), which choose its checkpoint; the cross-validation is what estimates how well it
does on patients it never saw. Both resume where they stopped (rerun the same command). Finished folds' validation
curves and per-patient rows are copied to benchmarks/experiments/<keep>/ (the small files kept in the repository:
`flair_model/`, `regions_model/`; a run with another `--iterations` than the recipe's keeps its files in
`<keep>/<N>_iterations/`, so that it never overwrites the recipe's). `--ship` writes the final model's chosen
checkpoint into the package as NAME, with a card whose cross-validated figures are computed here from the kept
per-patient rows, beside the no-learning floor's (benchmarks/experiments/threshold_floor.py, tuned on each fold's
non-test patients as the recipe's checkpoint and post-processing are).
"""
from __future__ import annotations
import argparse, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/, for common.py
from common import default_data  # noqa: E402
from brats_ssl.stats import p_text  # noqa: E402

PREP = dict(spacing=2.0)
SPLIT = dict(labelled=0.8, val=3)
TRAIN = dict(patch=(64, 64, 64), norm='batch', lr=0.02, iterations=4000, val_every=250, fg_prob=0.33)
HERE = Path(__file__).resolve().parent                  # benchmarks/experiments/: what the runs keep
MODELS = {'flair-wt': dict(keep='flair_model', train={}, mirror=True, postprocess='none', n4=False),
          'multimodal-regions': dict(keep='regions_model', train=dict(modalities=('flair', 't1', 't1ce', 't2'),
                                                                      regions=('wt', 'tc', 'et')), mirror=False, postprocess='none', n4=False)}
RULES = dict(none="none: every predicted component is kept, so a second lesion is kept too",
             small="'small': components under 0.1 mL are removed, every larger lesion is kept",
             largest="'largest': only the largest connected component is kept, which deletes every other lesion")


def settings(name: str, iterations: int | None = None) -> dict:
    "The training options of the model `name` (the shared recipe with the model's own inputs, outputs and length)."
    return {**TRAIN, **MODELS[name]['train'], **({} if iterations is None else dict(iterations=iterations))}


def final(name: str, data: Path, out: Path, device: str = 'auto', iterations: int | None = None, seed: int = 0, n4: bool = False) -> Path:
    "Train the shipped model `name`: every labelled patient of `data` but 3 (seeded), which choose the checkpoint. Returns the run folder."
    from brats_ssl.io import find_cases
    from brats_ssl.data import split_cases
    from brats_ssl.preprocess import preprocess_dataset
    from brats_ssl.pipeline import BUDGETS
    from brats_ssl.train import TrainConfig, train
    ids = sorted(c.id for c in find_cases(data) if c.labelled)
    split = split_cases(ids, len(ids) - SPLIT['val'], SPLIT['val'], 0, seed=0)
    t = settings(name, iterations)
    preprocess_dataset(data, out/'prep', progress=False, n4=n4, **PREP, **{k: t[k] for k in ('modalities', 'regions') if k in t})
    cfg = TrainConfig(method='unet', seed=seed, device=device, **{**BUDGETS['cpu-3mm']['train'], **t})
    run = out/('unet_final' if seed == 0 else f'unet_final_seed{seed}')        # seeds side by side in one --out
    train(out/'prep', run, split, cfg, resume=(run/'checkpoint_last.pt').exists(), progress=False)
    return run


def cv_rows(name: str) -> list[dict]:
    "The kept cross-validation of the recipe of `name`: the UNet3D's row of every test patient of the folds run."
    from brats_ssl.evaluate import read_rows
    return [r for f in sorted((HERE/MODELS[name]['keep']).glob('fold*_per_case.csv')) for r in read_rows(f) if r['method'] == 'unet']


def other_seeds(name: str) -> dict[int, list[dict]]:
    "The kept cross-validation of the recipe of `name` trained with other seeds (`--seed N`, rows in <keep>/seed<N>/): seed -> rows."
    from brats_ssl.evaluate import read_rows
    dirs = sorted((HERE/MODELS[name]['keep']).glob('seed*/'), key=lambda d: int(d.name[4:]))
    return {int(d.name[4:]): [r for f in sorted(d.glob('fold*_per_case.csv')) for r in read_rows(f) if r['method'] == 'unet'] for d in dirs}


def floor_rows() -> dict:
    "The no-learning floor by patient: the FLAIR threshold tuned on each fold's non-test patients (threshold_floor.py)."
    from brats_ssl.evaluate import read_rows
    return {r['case']: r for r in read_rows(HERE/'threshold_floor'/'per_case.csv') if r['method'] == 'threshold_nontest'}


def shipped_note(name: str, st: dict) -> str:
    "What the card's cross-validated figures measured, against the settings the model ships with."
    m = MODELS[name]
    return (f"the cross-validated and per-site figures were measured with each fold's own post-processing (none or the "
            f"largest component, chosen on its 3 validation patients) and without N4; the model ships with post-processing "
            f"{m['postprocess']!r}{' and N4 bias-field correction' if m['n4'] else ', without N4'}, chosen on the folds' "
            "validation patients pooled and on the stress test (benchmarks/experiments/stress/README.md); the folds' "
            "checkpoints were not kept, so these settings have no cross-validated figure of their own")


def site_text(name: str, rows: list[dict], floor: list[dict]) -> str:
    """Whole-tumour Dice per site (the id's institution) of the cross-validation rows, beside the floor's on the same
    patients, and the floor's with each site held out whole (threshold_floor.py --site)."""
    import numpy as np
    from brats_ssl.data import case_site
    from brats_ssl.evaluate import read_rows
    fl = {r['case']: r['dice'] for r in floor}
    held = [r for r in read_rows(HERE/'threshold_floor'/'per_case_site.csv') if r['method'] == 'threshold_nontest']
    sites = sorted({case_site(r['case']) for r in rows})
    parts = []
    for site in sites:
        rs = [r for r in rows if case_site(r['case']) == site]
        parts.append(f"{site} ({len(rs)}): {np.mean([r['dice'] for r in rs]):.3f} (floor {np.mean([fl[r['case']] for r in rs]):.3f})")
    alone = '; '.join(f"{site} {np.mean([r['dice'] for r in held if case_site(r['case']) == site]):.3f}" for site in sites)
    return ("whole tumour Dice per site in the random 3-fold cross-validation (patients, model, floor): " + '; '.join(parts)
            + f"; the recipe was not trained with a site held out whole; the floor tuned with each site held out whole: {alone} "
            f"(python benchmarks/experiments/shipped_model.py --model {name} --report)")


def stress_text(name: str) -> str:
    "The model's row of the stress test (benchmarks/stress.py), with its shipped settings, beside the floor's."
    import csv, statistics
    from pathlib import Path
    m = MODELS[name]
    path = HERE/'stress'/'per_case.csv'
    arm = name + ('+n4' if m['n4'] else '')
    with Path(path).open() as f: rows = [r for r in csv.DictReader(f)]
    def by(a, rule):
        out = {}
        for r in rows:
            if r['arm'] == a and r['rule'] == rule: out.setdefault(r['perturbation'], {})[r['case']] = float(r['dice'])
        return out
    mine, floor = by(arm, m['postprocess']), by('floor', 'largest')
    order = [p for p in ('clean', 'mirror', 'bias_is_0.4', 'bias_is_0.8', 'bias_lr_0.4', 'gamma_1.5', 'noise', 'thick', 'bias_ap_0.4', 'gamma_0.67') if p in mine]
    cells = [f"{p} {statistics.mean(mine[p].values()):.3f} (worst {min(mine[p].values()):.2f}; floor {statistics.mean(floor[p].values()):.3f})" for p in order]
    bad = sum(v < 0.5 and floor[p].get(c, 0) > 0.7 for p in order for c, v in mine[p].items())
    n = sum(len(mine[p]) for p in order)
    return (f"whole tumour Dice on the 22 shared patients perturbed as scanners differ (python benchmarks/stress.py --report; "
            f"{len(mine.get('clean', {}))} patients, 19 of which trained the model, so the level flatters it and the change "
            f"from clean is what counts; mean, worst patient, the FLAIR threshold floor's mean): " + '; '.join(cells)
            + f". Patient-perturbation pairs below Dice 0.5 where the floor is above 0.7: {bad} of {n}")


def mean_std(values, d: int = 3) -> str:
    import numpy as np
    return f"{np.mean(values):.{d}f} ± {np.std(values, ddof=1):.{d}f}" if len(values) > 1 else f"{np.mean(values):.{d}f}"


def interval(c: dict, d: int = 3, unit: str = '') -> str:
    "A paired comparison's mean difference and bootstrap interval, e.g. '+0.030 [-0.025, +0.095]'."
    return f"{c['mean_diff']:+.{d}f}{unit} [{c['ci_low']:+.{d}f}, {c['ci_high']:+.{d}f}]"


def card(name: str, ckpt: Path) -> dict:
    """The card of the shipped model `name` (the final run's chosen checkpoint `ckpt`, or the shipped one): what it is, how
    it was made, its cross-validated figures beside the floor's, per site, and its row of the stress test."""
    import json, numpy as np
    from brats_ssl.evaluate import region_key
    from brats_ssl.stats import paired_comparison
    from brats_ssl.train import load_checkpoint, TrainConfig
    rows = cv_rows(name)
    folds = sorted({r['fold'] for r in rows})
    ids = {r['case'] for r in rows}
    tests = [sum(r['fold'] == k for r in rows) for k in folds]                # test patients per fold
    floor = [r for c, r in floor_rows().items() if c in ids]
    st = load_checkpoint(ckpt)
    cfg = TrainConfig.from_dict(st['config'])
    want = settings(name)
    if (cfg.modalities, cfg.regions, cfg.iterations) != (tuple(want.get('modalities', ('flair',))), tuple(want.get('regions', ('wt',))), want['iterations']):
        sys.exit(f"{ckpt}: trained with {cfg.modalities}, {cfg.regions}, {cfg.iterations} iterations, not the recipe of {name}")
    names = dict(wt='whole tumour', tc='tumour core', et='enhancing tumour')
    ms = lambda rs, k: mean_std([r[k] for r in rs]) if k.startswith('dice') else mean_std([r[k] for r in rs], 2) + ' mm'
    diff = {k: paired_comparison(floor, rows, k) for k in ('dice', 'hd95')}
    split = st['split']
    m = MODELS[name]
    per_region = '; '.join(f"{names[g]} Dice {ms(rows, region_key('dice', g))}, HD95 {ms(rows, region_key('hd95', g))}" for g in cfg.regions)
    cv = (f"{len(ids)} patients, each the test patient of one of {len(folds)} folds (folds {', '.join(map(str, folds))} of "
          f"cpu-3mm's three; the same recipe, checkpoint and post-processing chosen on each fold's 3 validation patients): "
          f"{per_region}. The no-learning floor on the same patients (FLAIR z-score threshold, "
          f"its z, opening and components tuned on each fold's non-test patients; whole tumour): Dice {ms(floor, 'dice')}, HD95 {ms(floor, 'hd95')}. "
          f"Model - floor, whole tumour, paired: Dice {interval(diff['dice'])} (Wilcoxon p {p_text(diff['dice']['p_value'])}), "
          f"HD95 {interval(diff['hd95'], 2, ' mm')} (p {p_text(diff['hd95']['p_value'])}); mean ± sample std over patients, bootstrap 95 % interval.")
    dice_word = ('above the no-learning floor in whole-tumour Dice on patients it never saw (the interval excludes 0)' if diff['dice']['ci_low'] > 0 else
                 'below the no-learning floor in whole-tumour Dice on patients it never saw (the interval excludes 0)' if diff['dice']['ci_high'] < 0 else
                 f"{'above' if diff['dice']['mean_diff'] > 0 else 'below'} the no-learning floor in whole-tumour Dice on average only: the "
                 "interval includes 0, so on new patients it may do no better than a tuned FLAIR threshold")
    seeds = other_seeds(name)
    def seed_text(k, o):
        f, s = paired_comparison(floor, o, 'dice'), paired_comparison(rows, o, 'dice')
        return (f"the same recipe trained with seed {k} (other initial weights and patches; the same folds and patients): "
                f"whole tumour Dice {ms(o, 'dice')}, model - floor {interval(f)} (p {p_text(f['p_value'])}), "
                f"seed {k} - seed 0 {interval(s)} (p {p_text(s['p_value'])}): the figures above are one seed's")
    hd_word = ('better than it in HD95' if diff['hd95']['ci_high'] < 0 else 'worse than it in HD95' if diff['hd95']['ci_low'] > 0 else 'level with it in HD95')
    mods = ', '.join(dict(flair='FLAIR', t1='T1', t1ce='T1ce', t2='T2')[m] for m in cfg.modalities)
    outs = ', '.join(names[g] for g in cfg.regions)
    return dict(
        summary=(f"{mods} in, {outs} out: a UNet3D(8..64) trained on the shared BraTS 2018 patients"
                 + (" (the paper's task)" if cfg.regions == ('wt',) and cfg.modalities == ('flair',) else '')),
        input=(f"skull-stripped, co-registered {mods} of one patient in any BraTS layout (or a manifest); preprocessed as in training: "
               + ("N4 bias-field correction of each modality (SimpleITK, on the brain shrunk 4x), then " if m['n4'] else '')
               + "brain box, 2 mm, clipping at the brain's 0.5 and 99.5 percentiles, z-score on the brain, each modality on its own"),
        output=(f"a uint8 mask on the input's grid: " + ("whole tumour 1 (probability restored linearly, > 0.5)" if cfg.regions == ('wt',) else
                "BraTS labels in the input's convention (2017-2022: 1 core, 2 oedema, 4 enhancing; 2023+: 3 "
                "enhancing), from the regions' probabilities restored linearly, each region > 0.5, TC and ET within WT") +
                f"; post-processing {RULES[m['postprocess']]} (`--postprocess` chooses another)"
                + ("; the probabilities are the mean over the 8 flips of the three axes (test-time mirroring, chosen on "
                   "validation patients; `--no-mirror` turns it off)" if MODELS[name]['mirror'] else '')),
        training_data=f"BraTS 2018 training patients ({len(split['labelled'])} labelled; 3 validation patients, "
                      f"{', '.join(split['val'])}, chose the checkpoint)",
        recipe=(f"2 mm; 64^3 patches, a third centred on tumour; batch norm; SGD, learning rate 0.02, poly decay; {cfg.iterations} "
                f"iterations, validated every {cfg.val_every}" + ('' if cfg.regions == ('wt',) else
                '; the checkpoint maximises the mean validation Dice of the three regions')),
        checkpoint=f"iteration {st['iteration']} (validation Dice {st.get('best_dice', float('nan')):.3f} on the 3 validation patients)",
        command=(f"python benchmarks/experiments/shipped_model.py --model {name} --data ../shared/data/brats18 --out /tmp/{name}_final --final; "
                 f"python benchmarks/experiments/shipped_model.py --model {name} --out /tmp/{name}_final --ship"),
        cross_validation=cv,
        against_the_floor=f"{dice_word}; {hd_word}",
        shipped_settings=shipped_note(name, st),
        sites=site_text(name, rows, floor),
        stress_test=stress_text(name),
        **({'other_seeds': '; '.join(seed_text(k, o) for k, o in seeds.items())} if seeds else {}),
        figures=dict(patients=len(ids), folds=folds,
                     **{f"{region_key('dice', g)}_mean": round(float(np.mean([r[region_key('dice', g)] for r in rows])), 4) for g in cfg.regions},
                     **{f"{region_key('dice', g)}_std": round(float(np.std([r[region_key('dice', g)] for r in rows], ddof=1)), 4) for g in cfg.regions},
                     **{f"{region_key('hd95', g)}_mean": round(float(np.mean([r[region_key('hd95', g)] for r in rows])), 2) for g in cfg.regions},
                     floor_dice_mean=round(float(np.mean([r['dice'] for r in floor])), 4),
                     floor_hd95_mean=round(float(np.mean([r['hd95'] for r in floor])), 2)),
        data_terms='BraTS data are for research; cite Menze et al. 2015, IEEE TMI 34(10):1993-2024, and Bakas et al. 2017, '
                   'Sci Data 4:170117, and 2018, arXiv:1811.02629',
        limits=(f"trained on {len(split['labelled'])} patients of one release; other scanners, protocols or pre-operative/post-operative "
                f"status may need retraining; the cross-validation estimates the recipe trained on fewer patients "
                f"({'-'.join(str(n) for n in sorted({len(ids) - t - len(split['val']) for t in tests}))} per fold)"),
        clinical_use='not for clinical use: a research model, not a medical device')


def report(name: str) -> str:
    """The kept cross-validation of `name` as a Markdown table: per fold, the checkpoint its validation patients chose and
    the test patients' Dice per region and whole-tumour HD95, beside the floor's; then all patients, and the paired
    comparisons with the floor, with the other shipped recipe and (for the regions) with the `cpu-3mm` budget's UNet3D."""
    import csv
    from brats_ssl.evaluate import read_rows, region_key
    from brats_ssl.stats import paired_comparison
    rows, floor = cv_rows(name), floor_rows()
    regions = [g for g in ('wt', 'tc', 'et') if rows and rows[0].get(region_key('dice', g)) is not None]
    head = (['fold, test patients', 'checkpoint (validation Dice)'] + [f"model Dice {g.upper()}" for g in regions]
            + ['floor Dice WT', 'model HD95 WT (mm)', 'floor HD95 WT (mm)'])
    lines = ['| ' + ' | '.join(head) + ' |', '|:--|:--|' + '--:|' * (len(head) - 2)]
    def line(label, ck, rs):
        fl = [floor[r['case']] for r in rs]
        return ('| ' + ' | '.join([label, ck] + [mean_std([r[region_key('dice', g)] for r in rs]) for g in regions]
                                  + [mean_std([r['dice'] for r in fl]), mean_std([r['hd95'] for r in rs], 2), mean_std([r['hd95'] for r in fl], 2)]) + ' |')
    for k in sorted({r['fold'] for r in rows}):
        rs = [r for r in rows if r['fold'] == k]
        val = list(csv.DictReader(open(HERE/MODELS[name]['keep']/f"fold{k}_val.csv")))
        score = lambda v: max(float(v['val_dice']), float(v['val_dice_largest']))     # the better post-processing's
        best = max(val, key=score)
        lines.append(line(f"{k}, {len(rs)}", f"iteration {int(best['iteration']) + 1} ({score(best):.3f})", rs))
    lines.append(line(f"all, {len(rows)}", '', rows))
    fl = list(floor.values())                                    # paired_comparison pairs by patient
    for m, unit, d in (('dice', '', 3), ('hd95', ' mm', 2)):
        c = paired_comparison(fl, rows, m)
        lines.append(f"{'' if m == 'hd95' else chr(10)}- Model - floor ({'Dice' if m == 'dice' else 'HD95'}, whole tumour, {len(rows)} patients, paired): "
                     f"{interval(c, d, unit)}, Wilcoxon p {p_text(c['p_value'])}")
    n4 = HERE/MODELS[name]['keep']/'n4'                          # the recipe trained and predicted on N4-corrected images
    n4_rows = [r for f in sorted(n4.glob('fold*_per_case.csv')) for r in read_rows(f) if r['method'] == 'unet']
    if n4_rows:
        ids = {r['case'] for r in n4_rows}
        base = [r for r in rows if r['case'] in ids]
        for m, unit, d in (('dice', '', 3), ('hd95', ' mm', 2)):
            c = paired_comparison(base, n4_rows, m)
            lines.append(f"- The recipe on N4-corrected images ({'Dice' if m == 'dice' else 'HD95'} {mean_std([r[m] for r in n4_rows], d)}, "
                         f"folds {', '.join(sorted({str(r['fold']) for r in n4_rows}))}, {len(ids)} test patients) - without N4 "
                         f"({mean_std([r[m] for r in base], d)}), paired: {interval(c, d, unit)}, Wilcoxon p {p_text(c['p_value'])}")
    for k, o in other_seeds(name).items():                       # the recipe with another training seed, the same patients
        for m, unit, d in (('dice', '', 3), ('hd95', ' mm', 2)):
            c, f = paired_comparison(rows, o, m), paired_comparison(fl, o, m)
            lines.append(f"- The recipe with seed {k} ({'Dice' if m == 'dice' else 'HD95'} {mean_std([r[m] for r in o], d)}) - with seed 0 "
                         f"(whole tumour, paired): {interval(c, d, unit)}, Wilcoxon p {p_text(c['p_value'])}; - floor: "
                         f"{interval(f, d, unit)}, p {p_text(f['p_value'])}")
    lines.append('- Per site: ' + site_text(name, rows, list(floor.values())))
    plain = HERE/MODELS[name]['keep']/'plain_per_case.csv'       # the same checkpoints predicted without mirroring
    if plain.exists():
        base = [r for r in read_rows(plain) if r['method'] == 'unet']
        for m, unit, d in (('dice', '', 3), ('hd95', ' mm', 2)):
            c = paired_comparison(base, rows, m)
            lines.append(f"- Model - the same checkpoints without mirroring ({'Dice' if m == 'dice' else 'HD95'}, whole tumour, paired): "
                         f"{interval(c, d, unit)}, Wilcoxon p {p_text(c['p_value'])}")
    for other in MODELS:                                         # the other shipped recipe on the same patients
        them = cv_rows(other)
        if other != name and {r['case'] for r in them} >= {r['case'] for r in rows}:
            c = paired_comparison(them, rows, 'dice')
            lines.append(f"- Model - {other}'s recipe (Dice, whole tumour, paired): {interval(c)}, Wilcoxon p {p_text(c['p_value'])}")
    if len(regions) > 1:                                         # the regions at the cpu-3mm budget (UNet3D, 3 mm, 5 labelled, 500 iterations)
        base = [r for r in read_rows(HERE/'regions'/'cpu3mm_per_case.csv') if r['method'] == 'unet']
        for g in regions:
            c = paired_comparison(base, rows, region_key('dice', g))
            lines.append(f"- Model - the cpu-3mm budget's UNet3D ({g.upper()} Dice, paired): {interval(c)}, Wilcoxon p {p_text(c['p_value'])}")
    return '\n'.join(lines)


def prep_of(run: Path) -> Path:
    "The preprocessed cases a run folder was trained on: reproduce's out/prep, or --final's."
    return next(p/'prep' for p in run.parents if (p/'prep').is_dir())


def run_label(run: Path) -> str:
    "A run folder's name in the screens' rows: its fold (fold*/runs/unet_seed*), or 'final'."
    return run.parents[1].name if run.parent.name == 'runs' else 'final'


def region_dice(prob, y, regions, post: str) -> dict:
    """Dice per region (and their mean, for several) of the class probabilities `prob` of one case against its label
    levels `y`, on the grid they share: each region > 0.5, `post` on the whole tumour, TC and ET kept within it."""
    import numpy as np
    from brats_ssl.infer import postprocess, region_probabilities
    from brats_ssl.metrics import dice
    lv = (prob[1:] if prob.shape[0] == 2 else region_probabilities(prob)).numpy() > 0.5        # (regions, D, H, W)
    kept = postprocess(lv[0], post)
    d = {g: dice(lv[k] & kept, np.asarray(y) > k) for k, g in enumerate(regions)}
    return {**d, **({'mean': float(np.mean(list(d.values())))} if len(d) > 1 else {})}


def screen(name: str, runs: list[Path], keep: Path, setting: str = 'mirror') -> str:
    """Each run's chosen checkpoint on its validation patients (on the training grid, as validation scores), predicted
    both ways of one prediction setting: `mirror` (with and without the mean over the 8 flips; the run's own
    post-processing) or `postprocess` (every post-processing; the model's own mirroring). Pooling the runs gives a
    choice made on 4 times as many patients as one run's 3. Rows kept in `keep`/<setting>_val.csv, then the paired
    comparison, per region and for the mean of the regions. Test patients are not touched."""
    import csv, json
    from brats_ssl.data import load_volumes
    from brats_ssl.infer import sliding_window, POSTPROCESS
    from brats_ssl.stats import paired_comparison
    from brats_ssl.train import load_checkpoint, model_from_checkpoint, TrainConfig
    rows = []
    for run in runs:
        prep = prep_of(run)
        st = load_checkpoint(run/'checkpoint_best.pt')
        cfg, post, model = TrainConfig.from_dict(st['config']), st.get('postprocess', 'none'), model_from_checkpoint(st)
        ways = ([(m, post) for m in (False, True)] if setting == 'mirror' else [(MODELS[name]['mirror'], p) for p in POSTPROCESS])
        for case in json.loads((run/'split.json').read_text())['val']:
            x, y = load_volumes(prep, [case])[0]
            for mirror in sorted({m for m, _ in ways}):
                pr = sliding_window(model, x, cfg.patch, 0.5, mirror=mirror)
                for pp in [p for m, p in ways if m == mirror]:
                    rows.append(dict(**({'chosen': pp == post} if setting == 'postprocess' else {}),
                                     run=run_label(run), iteration=st['iteration'],
                                     postprocess=pp, case=case, mirror=mirror, **region_dice(pr, y, cfg.regions, pp)))
    with open(keep/f'{setting}_val.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
    a, b = (False, True) if setting == 'mirror' else ('none', 'largest')
    pair = lambda v: [dict(r, case=f"{r['run']}:{r['case']}") for r in rows if r[setting] == v]   # a patient in two runs: two pairs
    out = [] if setting == 'mirror' else [
        'the runs chose: ' + ', '.join(sorted({f"{r['run']} {r['postprocess']}" for r in rows if r['chosen']}))]
    for k in [*cfg.regions, *(['mean'] if len(cfg.regions) > 1 else [])]:
        c = paired_comparison(pair(a), pair(b), k)
        out.append(f"{'mirrored - plain' if setting == 'mirror' else 'largest component - none'}, {k} Dice on validation patients "
                   f"({c['n']} run-patient pairs): {c['mean_a']:.3f} -> {c['mean_b']:.3f}, {interval(c)}, Wilcoxon p {p_text(c['p_value'])}")
    return '\n'.join(out)


def screen_ensemble(name: str, groups: list[list[Path]], keep: Path) -> str:
    """Would an ensemble of runs of the recipe (the same split, other training seeds) predict better than one run? For
    each group of runs trained on the same patients, each validation patient is predicted by every run alone and by the
    group's ensemble, which averages the class probabilities and post-processes as `predict_dataset` does (the members'
    majority; a tie: none), with the model's own mirroring. Twice: with each run's chosen checkpoint and post-processing
    (what would ship, but chosen on these very patients, which flatters each run alone more than their mean), and with
    each run's last checkpoint, which no choice touched (post-processing none): the fair comparison. Dice on the training
    grid, as validation scores. Rows kept in `keep`/ensemble_val.csv; printed: the ensemble against each member (its
    position in the groups), paired over the run-patient pairs, after each group's means. Test patients are not touched."""
    import csv, json, numpy as np
    from brats_ssl.data import load_volumes
    from brats_ssl.infer import sliding_window
    from brats_ssl.pipeline import _ensemble_settings
    from brats_ssl.stats import paired_comparison
    from brats_ssl.train import load_checkpoint, model_from_checkpoint, TrainConfig
    rows = []
    for runs in groups:
        splits = [json.loads((r/'split.json').read_text()) for r in runs]
        if any(sp != splits[0] for sp in splits): sys.exit(f"{', '.join(map(str, runs))}: the runs were trained on different splits")
        prep, label = prep_of(runs[0]), run_label(runs[0])
        for which in ('best', 'last'):
            states = [load_checkpoint(r/f'checkpoint_{which}.pt') for r in runs]
            cfgs, models = [TrainConfig.from_dict(st['config']) for st in states], [model_from_checkpoint(st) for st in states]
            posts = [st.get('postprocess', 'none') if which == 'best' else 'none' for st in states]
            post = _ensemble_settings(states, [r/f'checkpoint_{which}.pt' for r in runs])[1] if which == 'best' else 'none'
            for case in splits[0]['val']:
                x, y = load_volumes(prep, [case])[0]
                probs = [sliding_window(m, x, c.patch, 0.5, mirror=MODELS[name]['mirror']) for m, c in zip(models, cfgs)]
                scored = [('ensemble', post, region_dice(sum(probs) / len(probs), y, cfgs[0].regions, post))] + [
                    (f"run {i + 1}", pp, region_dice(pr, y, cfgs[0].regions, pp)) for i, (pr, pp) in enumerate(zip(probs, posts))]
                rows += [dict(run=label, checkpoint=which, case=case, member=who, postprocess=pp, **d) for who, pp, d in scored]
    with open(keep/'ensemble_val.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
    regions = [k for k in rows[0] if k in ('wt', 'tc', 'et', 'mean')]
    key = regions[-1]                                            # the whole tumour's, or the mean of the regions
    members = sorted({r['member'] for r in rows} - {'ensemble'}) + ['ensemble']
    out = [f"{g}, {which} checkpoints, mean {key} Dice of its validation patients: " + ', '.join(
               f"{who} {np.mean([r[key] for r in rows if (r['run'], r['checkpoint'], r['member']) == (g, which, who)]):.3f}" for who in members)
           for g in dict.fromkeys(r['run'] for r in rows) for which in ('last', 'best')]
    for which in ('last', 'best'):
        keyed = lambda who: [dict(r, case=f"{r['run']}:{r['case']}") for r in rows if r['member'] == who and r['checkpoint'] == which]
        for who in members[:-1]:
            for k in regions:
                c = paired_comparison(keyed(who), keyed('ensemble'), k)
                out.append(f"{which} checkpoints: ensemble - {who} of each group alone, {k} Dice on validation patients ({c['n']} run-patient pairs): "
                           f"{c['mean_a']:.3f} -> {c['mean_b']:.3f}, {interval(c)}, Wilcoxon p {p_text(c['p_value'])}")
    return '\n'.join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--out', type=Path, default=Path('/tmp/flair_cv'))
    ap.add_argument('--model', choices=list(MODELS), default='flair-wt', help='which shipped model (default: flair-wt)')
    ap.add_argument('--fold', type=int, nargs='+', default=None, help='only these folds (default: all three)')
    ap.add_argument('--final', action='store_true', help='train the model that ships (all patients; 3 of them choose the checkpoint)')
    ap.add_argument('--ship', action='store_true', help='write the final model (in --out) into the package with its card')
    ap.add_argument('--reship', action='store_true', help="with --ship: the weights already shipped, with MODELS' prediction settings and a new card")
    ap.add_argument('--report', action='store_true', help='print the kept cross-validation as a table, beside the floor')
    ap.add_argument('--screen-mirror', type=Path, nargs='+', default=None, metavar='RUN',
                    help='score the chosen checkpoint of each run folder (fold*/runs/unet_seed0, unet_final) on its validation patients with and without mirroring')
    ap.add_argument('--screen-postprocess', type=Path, nargs='+', default=None, metavar='RUN',
                    help='the same with each post-processing (the model\'s own mirroring): the choice pooled over the runs\' validation patients')
    ap.add_argument('--screen-ensemble', nargs='+', default=None, metavar='RUN:RUN',
                    help='score each group of runs (the same split, other seeds; colon-separated) on its validation patients, alone and as an ensemble')
    ap.add_argument('--iterations', type=int, default=None); ap.add_argument('--device', default='auto')
    ap.add_argument('--n4', action='store_true', help='the recipe on N4 bias-field-corrected images (preprocess_case(n4=True)), folds or --final; rows in <keep>/n4/')
    ap.add_argument('--seed', type=int, default=0, help='the training seed (initial weights, patches); the patients\' split is the same for every seed')
    a = ap.parse_args(argv)
    keep = HERE/MODELS[a.model]['keep']
    if a.iterations is not None and a.iterations != settings(a.model)['iterations']:
        keep = keep/f"{a.iterations}_iterations"                 # another length than the recipe's: kept beside it
    if a.seed:
        keep = keep/f"seed{a.seed}"                                # another seed: kept beside the recipe's seed 0
    if a.n4:
        keep = keep/'n4'                                           # trained on N4-corrected images: kept beside the recipe's
    keep.mkdir(parents=True, exist_ok=True)
    if a.report:
        print(report(a.model))
        return 0
    if a.screen_ensemble:
        print(screen_ensemble(a.model, [[Path(r) for r in g.split(':')] for g in a.screen_ensemble], keep))
        return 0
    for setting in ('mirror', 'postprocess'):
        if getattr(a, f'screen_{setting}'):
            print(screen(a.model, getattr(a, f'screen_{setting}'), keep, setting))
            return 0
    if a.ship:
        from brats_ssl.pipeline import ship_checkpoint, card_text, pretrained_models
        from brats_ssl.pipeline import pretrained_checkpoints
        m = MODELS[a.model]
        src = pretrained_checkpoints(a.model)[0] if a.reship else a.out/'unet_final'/'checkpoint_best.pt'
        ship_checkpoint(src, a.model, card(a.model, src), mirror=m['mirror'], postprocess=m['postprocess'], n4=m['n4'])
        print(card_text(pretrained_models()[a.model]))
        return 0
    if a.final:
        run = final(a.model, a.data, a.out, a.device, a.iterations, a.seed, a.n4)
        shutil.copy(run/'val.csv', keep/'final_val.csv')
        return 0
    from brats_ssl.pipeline import reproduce
    reproduce(a.out, data=a.data, budget='cpu-3mm', methods=['unet'], device=a.device, progress=False, fold=a.fold,
              mirror=MODELS[a.model]['mirror'], seeds=(a.seed,), **({'n4': True} if a.n4 else {}), **PREP, **SPLIT, **settings(a.model, a.iterations))
    for v in sorted(a.out.glob(f'fold*/runs/unet_seed{a.seed}/val.csv')):
        shutil.copy(v, keep/f"{v.parents[2].name}_val.csv")
    import csv
    rows = list(csv.DictReader(open(a.out/'per_case.csv')))
    for k in sorted({r['fold'] for r in rows}):
        with open(keep/f"fold{k}_per_case.csv", 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0])); w.writeheader(); w.writerows(r for r in rows if r['fold'] == k)
    return 0


if __name__ == '__main__':
    sys.exit(main())
