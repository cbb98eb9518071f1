"""The benchmark suite: preprocessing, metrics against medpy, training steps of each method, whole-volume prediction.

    python benchmarks/bench.py [--data DIR] [--cases N] [--sizes 64 96] [--steps 3] [--device auto] [--json PATH]

Each figure is measured in this one run and printed as a table (and written as JSON with --json), with the machine
and the device named. Training steps and prediction run in fresh processes so that their peak memory (resident set
size, or CUDA peak allocation on a GPU) is their own. DIR defaults to $BRATS_DATA, else ../shared/data/brats18.
Speed is never asserted by a test: this script only measures.
"""
from __future__ import annotations
import argparse, os, platform, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data, peak_mb, stepper, train_steps, predict_timed, FOUR, region_pairs, shipped_pairs, largest_case, in_fresh_process  # noqa: E402
from bench_metrics import make_prediction, medpy_metrics  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data())
    ap.add_argument('--cases', type=int, default=5, help='real cases for preprocessing and metrics')
    ap.add_argument('--sizes', type=int, nargs='+', default=[64, 96], help='training patch sizes')
    ap.add_argument('--steps', type=int, default=3, help='timed training steps per method and size (after one warm-up); the median is reported')
    ap.add_argument('--overlap', type=float, default=0.5)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--json', type=Path)
    ap.add_argument('--only', choices=['regions', 'shipped'], default=None,
                    help='regions: only the four-modality three-region step and prediction against the binary FLAIR ones; '
                         'shipped: only the shipped models predicting the largest case, with and without mirroring')
    ap.add_argument('--pairs', type=int, default=3, help='interleaved pairs of predictions per shipped model (--only shipped)')
    a = ap.parse_args(argv)
    import numpy as np, torch, SimpleITK as sitk
    from brats_ssl.io import BratsError, find_cases, read_case, write_json
    from brats_ssl.preprocess import _params, _preprocess_one, load_arrays, load_record
    from brats_ssl.metrics import segmentation_metrics
    from brats_ssl.scale import resolve_device
    try: cases = find_cases(a.data)[:a.cases]
    except BratsError as e: print(f"bench: {e} (set BRATS_DATA or --data)", file=sys.stderr); return 2
    dev = resolve_device(a.device)
    res = dict(machine=dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                            cpus=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads(),
                            device=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'))
    if a.only: return _only(a, res)
    pre_t, ours_t, medpy_t, cache_mb, source_mb, load_t = [], [], [], [], [], []
    import tempfile
    tmp = Path(tempfile.mkdtemp())
    params = _params(None, 4, (0.5, 99.5))
    _preprocess_one(cases[0], tmp/'warm-up', params)     # untimed: the first read of a process pays for SimpleITK's set-up
    for c in cases:
        t = time.perf_counter(); _preprocess_one(c, tmp, params); pre_t.append(time.perf_counter() - t)   # what preprocess_dataset does per case
        rec = load_record(tmp, c.id)
        cache_mb.append(sum((tmp/rec[k]).stat().st_size for k in ('image', 'label')) / 2**20)
        source_mb.append((c.flair.stat().st_size + c.seg.stat().st_size) / 2**20)
        t = time.perf_counter(); load_arrays(tmp, c.id); load_t.append(time.perf_counter() - t)
        flair, seg = read_case(c)
        ref = sitk.GetArrayFromImage(seg) > 0
        pred, sp = make_prediction(ref), seg.GetSpacing()[::-1]
        t = time.perf_counter(); ours = segmentation_metrics(pred, ref, sp); ours_t.append(time.perf_counter() - t)
        t = time.perf_counter(); theirs = medpy_metrics(pred, ref, sp); medpy_t.append(time.perf_counter() - t)
        assert all(abs(ours[k] - theirs[k]) <= 1e-9 for k in ours), (c.id, ours, theirs)
    res['preprocess'] = dict(cases=len(cases), seconds_per_case=float(np.median(pre_t)), note='read + preprocess + write the cache, one process, median after a warm-up',
                             cache_mb_per_case=float(np.mean(cache_mb)), source_mb_per_case=float(np.mean(source_mb)),
                             cache_load_seconds=float(np.mean(load_t)))
    res['metrics'] = dict(cases=len(cases), ours_seconds=float(np.mean(ours_t)), medpy_seconds=float(np.mean(medpy_t)),
                          ratio=float(np.sum(medpy_t) / np.sum(ours_t)))
    from brats_ssl.methods import METHODS
    res['train'] = [in_fresh_process(train_steps, (m, s, a.steps, a.device)) for s in a.sizes for m in METHODS]
    for s in a.sizes:
        st = {r['method']: r['seconds'] for r in res['train'] if r['patch'] == s}
        res.setdefault('uamt_over_mt', {})[str(s)] = st['uamt'] / st['mt']
    # prediction of the first case and of the case with the largest brain box in the data set (the slowest)
    largest = largest_case(find_cases(a.data))
    res['predict'] = [in_fresh_process(predict_timed, (str(c.flair), a.device, a.overlap))
                      for c in ([cases[0]] if largest.id == cases[0].id else [cases[0], largest])]
    res['predict'].append(in_fresh_process(predict_timed, (str(largest.flair), a.device, a.overlap, {}, 3)))   # a 3-fold ensemble
    _measure_regions(a, res, largest)
    m = res['machine']
    print(f"brats_ssl benchmark on {m['platform']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), device {m['device']}")
    print("| what | figure |\n|:---|---:|")
    pp = res['preprocess']
    print(f"| preprocess one real case (read + pipeline + write the cache; median of {len(cases)} cases after a warm-up) | {pp['seconds_per_case']:.2f} s |")
    print(f"| its cache on disk (Blosc LZ4 image + label) / the source .nii.gz files; cache load | "
          f"{pp['cache_mb_per_case']:.1f} MB / {pp['source_mb_per_case']:.1f} MB; {pp['cache_load_seconds'] * 1000:.0f} ms |")
    print(f"| metrics per case: brats_ssl / medpy on 240x240x155 | {res['metrics']['ours_seconds']:.3f} s / {res['metrics']['medpy_seconds']:.2f} s ({res['metrics']['ratio']:.1f}x) |")
    for r in res['train']:
        heap = ', heap_cache' if r['heap_cache'] else ''
        print(f"| train step {r['method']} {r['patch']}^3, 2+2 patches, UNet3D(16..256){heap} | {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB |")
    for s, v in res['uamt_over_mt'].items(): print(f"| UAMT / Mean Teacher step at {s}^3 (T=8) | {v:.2f}x |")
    for p in res['predict']:
        what = 'UNet3D(16..256)' if p['members'] == 1 else f"ensemble of {p['members']} UNet3D(16..256)"
        print(f"| predict {p['case']} ({'x'.join(map(str, p['size']))}, crop {'x'.join(map(str, p['cropped']))}), {what}, "
              f"window {'x'.join(map(str, p['window']))}, overlap {p['overlap']}, read + preprocess + predict + restore | {p['seconds']:.1f} s, peak {p['peak_mb']:.0f} MB |")
    _print_regions(res)
    if a.json: write_json(res, a.json); print(f"written {a.json}")
    return 0


def _measure_regions(a, res, case) -> None:
    "Four modalities and three regions beside FLAIR alone and the whole tumour: UAMT steps (pairs in one process), and prediction of `case`."
    pairs = in_fresh_process(region_pairs, (a.sizes[0], 4, a.device))
    res['regions_step'] = dict(patch=a.sizes[0], pairs=pairs, ratio=statistics.median(y / x for x, y in pairs),
                               ratio_range=[min(y / x for x, y in pairs), max(y / x for x, y in pairs)])
    if all(getattr(case, m) is not None for m in FOUR['modalities']):
        res['predict_regions'] = [in_fresh_process(predict_timed, (str(case.flair), a.device, a.overlap, s, 1, o))
                                  for s, o in (({}, {}), (FOUR, {m: str(case.path(m)) for m in FOUR['modalities'][1:]}))]


def _only(a, res) -> int:
    "`--only regions` or `--only shipped`: that part alone, on the largest case."
    from brats_ssl.io import find_cases, write_json
    m = res['machine']
    print(f"brats_ssl benchmark on {m['platform']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), device {m['device']}")
    print("| what | figure |\n|:---|---:|")
    case = largest_case(find_cases(a.data))
    if a.only == 'regions':
        _measure_regions(a, res, case); _print_regions(res)
    else:
        _shipped(a, res, case)
    if a.json: write_json(res, a.json); print(f"written {a.json}")
    return 0


def _shipped(a, res, case) -> None:
    "Each shipped model predicting `case` as `brats-ssl predict --pretrained` does, without and with mirroring, interleaved."
    from brats_ssl.pipeline import pretrained_models, pretrained_checkpoints
    from brats_ssl.train import load_checkpoint
    res['shipped'] = [in_fresh_process(shipped_pairs, (n, str(a.data), case.id, a.pairs, a.device)) for n in pretrained_models()]
    for r in res['shipped']:
        plain, mirrored = [x for x, _ in r['pairs']], [y for _, y in r['pairs']]
        ratio = [y / x for x, y in r['pairs']]
        default = 'mirrored' if load_checkpoint(pretrained_checkpoints(r['model'])[0]).get('mirror') else 'plain'
        print(f"| predict {r['case']} with the shipped `{r['model']}` (read + preprocess + predict + restore + write; its default: {default}), "
              f"mirrored over 8 flips / plain ({len(ratio)} interleaved pairs; median {statistics.median(mirrored):.1f} s / "
              f"{statistics.median(plain):.1f} s; process peak {r['peak_mb']:.0f} MB) | {statistics.median(ratio):.2f}x "
              f"(range {min(ratio):.2f}-{max(ratio):.2f}x) |")


def _print_regions(res) -> None:
    rs = res['regions_step']
    print(f"| UAMT step at {rs['patch']}^3, 4 modalities and 3 regions / FLAIR and the whole tumour ({len(rs['pairs'])} interleaved pairs; "
          f"median steps {statistics.median(y for _, y in rs['pairs']):.2f} s / {statistics.median(x for x, _ in rs['pairs']):.2f} s) | "
          f"{rs['ratio']:.2f}x (range {rs['ratio_range'][0]:.2f}-{rs['ratio_range'][1]:.2f}x) |")
    if 'predict_regions' in res:
        one, four = res['predict_regions']
        print(f"| predict {four['case']} with 4 modalities and 3 regions / FLAIR and the whole tumour (read + preprocess + predict + restore; "
              f"{four['seconds']:.1f} s / {one['seconds']:.1f} s, peak {four['peak_mb']:.0f} / {one['peak_mb']:.0f} MB) | {four['seconds'] / one['seconds']:.2f}x |")


if __name__ == '__main__':
    sys.exit(main())
