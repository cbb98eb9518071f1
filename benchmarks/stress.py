"""The stress test: every shared patient perturbed in the ways scanners differ, each shipped model (with and without N4
bias-field correction) and the FLAIR threshold floor scored on each, per patient.

    python benchmarks/stress.py --data ../shared/data/brats18              # run what is missing, then print the tables
    python benchmarks/stress.py --report                                   # the tables of the kept rows only

Perturbations (applied to every modality of a case alike, the label unchanged unless said; the background stays 0, so
the brain mask is the same):

- `clean`: the files as they are;
- `bias_is_0.4`, `bias_is_0.8`: a smooth multiplicative field brightening the inferior slices, 1 + a (1 - k/K)^2 over
  the slice index k (the shading under which `flair-wt` marked the cerebellum as tumour on unseen patients);
- `bias_lr_0.4`, `bias_ap_0.4`: the same field along the left-right and the anterior-posterior axis;
- `gamma_1.5`, `gamma_0.67`: another contrast, x -> max (x / max)^g over the brain;
- `noise`: the magnitude of the image plus Gaussian noise of 5 % of the brain's 99th percentile (Rician, as MRI's);
- `thick`: 5 mm slices (each 5 consecutive axial slices averaged, then linearly interpolated back to 1 mm);
- `mirror`: a second lesion, the tumour mirrored into the other hemisphere about the brain's centre (image and label).

The models are the shipped ones (`brats_ssl/weights`), each with its own settings (mirroring, the grid); the raw mask
(> 0.5) is then post-processed with each rule of `POSTPROCESS_RULES`, so that one prediction scores every rule. The
floor is the FLAIR threshold of `threshold_segmentation` (z > 1 on the brain, two openings, the largest component).
The shipped models were trained on these patients (19 of them; 3 chose their checkpoint): the absolute figures flatter
them. What the stress test measures is the change each perturbation makes, against the same patients clean.

Rows go to `<out>/per_case.csv` (default benchmarks/experiments/stress/), one per patient, perturbation, arm and rule;
a run that stops is resumed where it stopped.
"""
from __future__ import annotations
import argparse, csv, statistics, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE/'experiments'/'stress'
PERTURBATIONS = ('clean', 'mirror', 'bias_is_0.4', 'bias_is_0.8', 'bias_lr_0.4', 'gamma_1.5', 'noise', 'thick',
                 'bias_ap_0.4', 'gamma_0.67')
RUN = PERTURBATIONS[:8]          # what a run does unless told (the last two: --perturbations ...)
FIELDS = ['case', 'perturbation', 'arm', 'rule', 'dice', 'dice_tc', 'dice_et', 'found_first', 'found_second', 'volume_ml', 'seconds']


def _field(shape, axis: int, a: float) -> np.ndarray:
    "1 + a (1 - u)^2, u from 0 to 1 along array `axis` (0: inferior to superior, 1: anterior-posterior, 2: left-right)."
    u = np.linspace(0, 1, shape[axis])
    s = [1, 1, 1]; s[axis] = shape[axis]
    return (1 + a * (1 - u) ** 2).reshape(s).astype(np.float32)


def _mirror_about(x: np.ndarray, c: int) -> np.ndarray:
    "`x` flipped along its last axis about index `c` (index i goes to 2c - i); what falls outside is 0."
    out = np.zeros_like(x)
    idx = 2 * c - np.arange(x.shape[2])
    ok = (idx >= 0) & (idx < x.shape[2])
    out[:, :, np.flatnonzero(ok)] = x[:, :, idx[ok]]
    return out


def perturb(name: str, arrays: dict, seg: np.ndarray, brain: np.ndarray, rng: np.random.Generator):
    """The perturbed arrays (modality -> float32 [z, y, x]) and label, and the second lesion's mask (`mirror`) or None."""
    from scipy import ndimage as ndi
    if name == 'clean': return arrays, seg, None
    kind, _, value = name.partition('_')
    if kind == 'bias':
        axis, a = value.split('_')
        f = _field(seg.shape, {'is': 0, 'ap': 1, 'lr': 2}[axis], float(a))
        return {m: x * f for m, x in arrays.items()}, seg, None
    if kind == 'gamma':
        g = float(value)
        out = {}
        for m, x in arrays.items():
            top = float(x[brain].max()) if brain.any() else 1.0
            y = x.copy(); y[brain] = top * np.clip(x[brain] / top, 0, None) ** g
            out[m] = y
        return out, seg, None
    if name == 'noise':
        out = {}
        for m, x in arrays.items():
            s = 0.05 * float(np.percentile(x[brain], 99))
            y = x.copy()
            y[brain] = np.hypot(x[brain] + rng.normal(0, s, int(brain.sum())), rng.normal(0, s, int(brain.sum())))
            out[m] = y.astype(np.float32)
        return out, seg, None
    if name == 'thick':
        out = {}
        for m, x in arrays.items():
            k = x.shape[0] // 5 * 5
            blocks = x[:k].reshape(k // 5, 5, *x.shape[1:]).mean(1)
            centres = np.arange(k // 5) * 5 + 2.0
            z = np.clip(np.interp(np.arange(x.shape[0]), centres, np.arange(k // 5)), 0, k // 5 - 1)
            y = ndi.map_coordinates(blocks, np.meshgrid(z, np.arange(x.shape[1]), np.arange(x.shape[2]), indexing='ij'), order=1)
            out[m] = (y * brain).astype(np.float32)
        return out, seg, None
    if name == 'mirror':
        xs = np.flatnonzero(brain.any((0, 1)))
        c = int(round((xs[0] + xs[-1]) / 2))
        t = seg > 0
        t2 = _mirror_about(t, c) & brain & ~ndi.binary_dilation(t, iterations=2)
        out = {m: np.where(t2, _mirror_about(x, c), x).astype(np.float32) for m, x in arrays.items()}
        return out, np.where(t2, _mirror_about(seg, c), seg), t2
    raise ValueError(f"unknown perturbation {name!r}")


def _done(path: Path) -> set:
    if not path.exists(): return set()
    with path.open() as f: return {(r['case'], r['perturbation'], r['arm']) for r in csv.DictReader(f)}


ARMS = ('flair-wt', 'flair-wt+n4', 'multimodal-regions', 'multimodal-regions+n4', 'floor')


def run(data: Path, out: Path, perturbations, ids=None, arms=ARMS, extra: dict | None = None) -> Path:
    import SimpleITK as sitk, torch
    from tqdm.auto import tqdm
    from brats_ssl.io import find_cases, read_modality, read_case, region_levels, REGIONS
    from brats_ssl.preprocess import preprocess_case, brain_mask, Preprocessed
    from brats_ssl.pipeline import pretrained_checkpoints
    from brats_ssl.train import load_checkpoint, model_from_checkpoint, TrainConfig
    from brats_ssl.infer import predict_case, postprocess_levels, POSTPROCESS_RULES
    from brats_ssl.metrics import dice
    from brats_ssl.evaluate import threshold_segmentation
    extra = dict(extra or {})                 # arm name -> a checkpoint, predicted with its own preprocessing (N4 if it was trained so)
    arms = tuple(arms) + tuple(extra)
    models, n4_of = {}, {}
    for name, ck in [(n, pretrained_checkpoints(n)[0]) for n in ('flair-wt', 'multimodal-regions')] + list(extra.items()):
        st = load_checkpoint(ck)
        models[name] = (model_from_checkpoint(st), TrainConfig.from_dict(st['config']), st['preprocess'], bool(st.get('mirror', False)))
    for a in arms:
        if a != 'floor': n4_of[a] = models[a][2].get('n4', False) if a in extra else a.endswith('+n4')
    p0, *ps = ({k: v for k, v in m[2].items() if k not in ('modalities', 'regions', 'n4')} for m in models.values())
    assert all(p == p0 for p in ps), f"the models preprocess differently ({p0} / {ps}): this script shares one preprocessing"
    out.mkdir(parents=True, exist_ok=True)
    path = out/'per_case.csv'
    done = _done(path)
    new = not path.exists()
    f = path.open('a', newline=''); w = csv.DictWriter(f, FIELDS)
    if new: w.writeheader()
    cases = [c for c in find_cases(data) if c.labelled and (ids is None or c.id in ids)]
    todo = [(p, c) for p in perturbations for c in cases if any((c.id, p, a) not in done for a in arms)]
    for p, case in tqdm(todo, desc='stress', unit='case'):
        flair, seg_img = read_case(case)
        imgs = {'flair': flair, **{m: read_modality(case, m) for m in ('t1', 't1ce', 't2')}}
        arrays = {m: sitk.GetArrayFromImage(im).astype(np.float32) for m, im in imgs.items()}
        seg = sitk.GetArrayFromImage(seg_img)
        brain = brain_mask(arrays['flair'])
        rng = np.random.default_rng([ord(ch) for ch in case.id + p])      # the same noise at every run
        parr, pseg, second = perturb(p, arrays, seg, brain, rng)
        pimgs = {}
        for m, x in parr.items():
            im = sitk.GetImageFromArray(x); im.CopyInformation(imgs[m]); pimgs[m] = im
        ref = region_levels(pseg, case.labels)
        first = region_levels(seg, case.labels) > 0
        spacing = flair.GetSpacing()
        def row(arm, rule, lv, seconds):
            r = dict(case=case.id, perturbation=p, arm=arm, rule=rule, dice=round(dice(lv > 0, ref > 0), 4),
                     volume_ml=round(float((lv > 0).sum()) * float(np.prod(spacing)) / 1000, 3), seconds=round(seconds, 2))
            if lv.max() > 1 or arm.startswith('multimodal'):
                r.update(dice_tc=round(dice(lv >= 2, ref >= 2), 4), dice_et=round(dice(lv >= 3, ref >= 3), 4))
            if second is not None:
                r.update(found_first=round(float((lv > 0)[first].mean()), 4), found_second=round(float((lv > 0)[second].mean()), 4))
            w.writerow(r)
        for n4 in (False, True):
            names = [a for a in arms if a != 'floor' and n4_of[a] == n4 and (case.id, p, a) not in done]
            if not names: continue
            t = time.perf_counter()
            four = any(models[a if a in extra else a.removesuffix('+n4')][2].get('modalities') for a in names)   # FLAIR alone where it does
            pre = preprocess_case(pimgs['flair'], spacing=p0['spacing'], margin=p0['margin'], percentiles=p0['percentiles'],
                                  others={m: pimgs[m] for m in ('t1', 't1ce', 't2')} if four else None, n4=n4)
            t_pre = time.perf_counter() - t
            for arm in names:
                net, cfg, params, mirror = models[arm if arm in extra else arm.removesuffix('+n4')]
                pm = pre if params.get('modalities') else Preprocessed(pre.image, None, pre.source, pre.info, {})
                t = time.perf_counter()
                with torch.no_grad():
                    mask, _ = predict_case(net, pm, cfg.patch, mirror=mirror)
                lv = sitk.GetArrayFromImage(mask)
                secs = time.perf_counter() - t + t_pre
                for rule in POSTPROCESS_RULES: row(arm, rule, postprocess_levels(lv, rule, spacing), secs)
        if 'floor' in arms and (case.id, p, 'floor') not in done:
            t = time.perf_counter()
            m = threshold_segmentation(pimgs['flair'], z=1.0, openings=2, largest=True)
            row('floor', 'largest', m, time.perf_counter() - t)
        f.flush()
    f.close()
    return path


def report(path: Path, arms=None) -> str:
    "The tables of the kept rows: mean WT Dice per perturbation and arm (each model with its best-kept rule), drop from clean, worst patient."
    with path.open() as f: rows = list(csv.DictReader(f))
    by = {}
    for r in rows: by.setdefault((r['arm'], r['rule'], r['perturbation']), {})[r['case']] = float(r['dice'])
    perts = [p for p in PERTURBATIONS if any(k[2] == p for k in by)]
    combos = sorted({(a, ru) for a, ru, _ in by}, key=lambda k: (k[0] != 'floor', k))
    if arms: combos = [k for k in combos if k[0] in arms]
    lines = ['| arm | rule | ' + ' | '.join(perts) + ' |', '|:--|:--|' + '--:|' * len(perts)]
    for a, ru in combos:
        cells = []
        for p in perts:
            d = by.get((a, ru, p), {})
            if not d: cells.append(''); continue
            clean = by.get((a, ru, 'clean'), {})
            both = [c for c in d if c in clean]
            drop = statistics.mean(d[c] - clean[c] for c in both) if both and p != 'clean' else None
            cells.append(f"{statistics.mean(d.values()):.3f}" + (f" ({drop:+.3f})" if drop is not None else '')
                         + f" min {min(d.values()):.2f}" + ('' if len(d) == 22 else f" n={len(d)}"))
        lines.append(f"| {a} | {ru} | " + ' | '.join(cells) + ' |')
    bar = []
    floor = {p: by.get(('floor', 'largest', p), {}) for p in perts}
    for a, ru in combos:
        if a == 'floor': continue
        bad = [(p, c) for p in perts for c, v in by.get((a, ru, p), {}).items() if v < 0.5 and floor[p].get(c, 0) > 0.7]
        low = [p for p in perts if by.get((a, ru, p)) and floor[p] and
               statistics.mean(by[(a, ru, p)].values()) < statistics.mean(floor[p][c] for c in by[(a, ru, p)] if c in floor[p])]
        bar.append(f"- {a}, {ru}: {len(bad)} patient-perturbation pairs below Dice 0.5 where the floor is above 0.7"
                   + (f" ({', '.join(f'{c} {p}' for p, c in bad[:6])}{', ...' if len(bad) > 6 else ''})" if bad else '')
                   + f"; mean below the floor's under {len(low)} of {len(perts)} conditions" + (f" ({', '.join(low)})" if low else ''))
    mirror = [r for r in rows if r['perturbation'] == 'mirror' and r['found_second']]
    sec = []
    for a, ru in combos:
        rs = [r for r in mirror if r['arm'] == a and r['rule'] == ru]
        if rs:
            sec.append(f"- {a}, {ru}: second lesion found (> half its voxels) in {sum(float(r['found_second']) > 0.5 for r in rs)} "
                       f"of {len(rs)} patients, the first in {sum(float(r['found_first']) > 0.5 for r in rs)}")
    return ('Whole-tumour Dice, mean over patients (change from clean, paired) and the worst patient:\n\n' + '\n'.join(lines)
            + '\n\nThe bar (no patient below 0.5 where the floor is above 0.7; a mean not below the floor):\n' + '\n'.join(bar)
            + '\n\nThe mirrored second lesion:\n' + '\n'.join(sec))


def main(argv=None) -> int:
    from brats_ssl.io import default_data_dir
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=None); ap.add_argument('--out', type=Path, default=OUT)
    ap.add_argument('--perturbations', nargs='+', default=list(RUN), choices=PERTURBATIONS)
    ap.add_argument('--cases', nargs='+', default=None, help='case ids (default: every labelled case)')
    ap.add_argument('--arms', nargs='+', default=None, choices=ARMS, help='default: all')
    ap.add_argument('--checkpoint', nargs='+', default=[], metavar='ARM=CHECKPOINT',
                    help='more arms: a checkpoint each, predicted with its own preprocessing and settings')
    ap.add_argument('--report', action='store_true', help='print the tables of the kept rows, run nothing')
    a = ap.parse_args(argv)
    if not a.report:
        kw = {} if a.arms is None else dict(arms=tuple(a.arms))
        kw['extra'] = dict(c.split('=', 1) for c in a.checkpoint)
        run(a.data or default_data_dir(), a.out, a.perturbations, a.cases, **kw)
    print(report(a.out/'per_case.csv', None if a.arms is None else list(a.arms) + [c.split('=', 1)[0] for c in a.checkpoint]))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
