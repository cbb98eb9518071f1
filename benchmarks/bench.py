"""The benchmark suite: preprocessing, metrics against medpy, training steps of each method, whole-volume prediction.

    python benchmarks/bench.py [--data DIR] [--cases N] [--sizes 64 96] [--steps 3] [--device auto] [--json PATH]

Each figure is measured in this one run and printed as a table (and written as JSON with --json), with the machine
and the device named. Training steps and prediction run in fresh processes so that their peak memory (resident set
size, or CUDA peak allocation on a GPU) is their own. DIR defaults to $BRATS_DATA, else ../shared/data/brats18.
Speed is never asserted by a test: this script only measures.
"""
from __future__ import annotations
import argparse, itertools, multiprocessing as mp, os, platform, resource, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import default_data, make_prediction, medpy_metrics  # noqa: E402


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stepper(method: str, size: int, device: str, settings: dict | None = None, modify=None):
    """A function that runs one training step of `method` (batch 2 + 2 patches of size^3, UNet3D(16..256), or the
    `settings` given) and times it, the device, and the memory setting `train` would run it under (`heap_cache`).
    `modify`: a function of the built model that returns the model to step with (benchmarks of variants)."""
    import torch
    from brats_ssl.train import TrainConfig, build, train_step
    from brats_ssl.scale import heap_cache, resolve_device
    torch.manual_seed(0)
    dev = resolve_device(device)
    cfg = TrainConfig(**{**dict(method=method, patch=(size,) * 3, device=device), **(settings or {})})
    model, meth, opt = build(cfg, dev)
    if modify: model = modify(model)
    fmt, ch = torch.channels_last_3d, len(cfg.modalities)
    xl = torch.randn(2, ch, size, size, size, device=dev).to(memory_format=fmt)
    yl = (torch.rand(2, size, size, size, device=dev) > 0.8).long()
    if cfg.regions != ('wt',): yl = yl * torch.randint(1, 4, yl.shape, device=dev)      # the regions' levels 0-3
    xu = torch.randn(2, ch, size, size, size, device=dev).to(memory_format=fmt)
    amp = dev.type == 'cuda' and cfg.amp
    it = itertools.count()
    def step() -> float:
        i = next(it)
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        train_step(model, meth, opt, (xl, yl, xu if meth.semi_supervised else None), i, cfg, dev, amp)   # the loop's own step
        if dev.type == 'cuda': torch.cuda.synchronize()
        return time.perf_counter() - t
    return step, dev, heap_cache(cfg.keep_heap and dev.type == 'cpu')


def _train_step(args) -> dict:
    method, size, steps, device, *settings = args
    import torch
    step, dev, heap = _stepper(method, size, device, *settings)
    with heap as kept:
        times = [step() for _ in range(steps + 1)][1:]               # the first step warms up (and runs cuDNN's autotuner)
        peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else _peak_mb()
    # the median step: robust to the odd step slowed by the rest of a shared machine
    return dict(method=method, patch=size, seconds=statistics.median(times), step_seconds=times, peak_mb=peak, heap_cache=kept)


def _predict(args) -> dict:
    flair_path, device, overlap, *settings = args       # settings: TrainConfig fields, the number of ensemble members, other modalities' files
    import torch
    from brats_ssl.io import read_image
    from brats_ssl.preprocess import preprocess_case
    from brats_ssl.infer import predict_case, inference_window
    from brats_ssl.train import TrainConfig, network
    from brats_ssl.scale import resolve_device
    torch.manual_seed(0)
    dev = resolve_device(device)
    cfg = TrainConfig(device=device, **(settings[0] if settings else {}))
    members = settings[1] if len(settings) > 1 else 1
    others = settings[2] if len(settings) > 2 else {}
    models = [network(cfg, dev).eval() for _ in range(members)]   # as `predict` has them from checkpoints: no teacher, no optimiser
    model = models[0]
    flair = read_image(flair_path, 'FLAIR')
    t = time.perf_counter()
    pre = preprocess_case(flair, others=others)
    mask, _ = predict_case(models, pre, [cfg.patch] * members, overlap, device=dev, amp=dev.type == 'cuda')
    secs = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else _peak_mb()
    window = inference_window(pre.image.GetSize()[::-1], cfg.patch, model.size_multiple)
    return dict(case=Path(flair_path).name, size=list(flair.GetSize()), cropped=list(pre.image.GetSize()),
                patch=list(cfg.patch), window=list(window[::-1]), overlap=overlap, seconds=secs, peak_mb=peak, members=members,
                channels=len(cfg.modalities), classes=2 if cfg.regions == ('wt',) else 4)


FOUR = dict(modalities=('flair', 't1', 't1ce', 't2'), regions=('wt', 'tc', 'et'))

def _region_pairs(args) -> list[tuple[float, float]]:
    "Pairs of UAMT steps, the binary FLAIR-only run then the four-modality three-region run, interleaved in one process."
    size, pairs, device = args
    (one, _, heap), (four, _, _) = _stepper('uamt', size, device), _stepper('uamt', size, device, FOUR)
    with heap:
        one(); four()                                                 # warm-up
        return [(one(), four()) for _ in range(pairs)]


def largest_case(cases):
    "The case with the largest brain box (the slowest to predict) among `cases`."
    import numpy as np, SimpleITK as sitk
    from brats_ssl.io import read_image
    from brats_ssl.preprocess import bounding_box, brain_mask
    boxes = [np.prod(bounding_box(brain_mask(sitk.GetArrayFromImage(read_image(c.flair, 'FLAIR'))))[1]) for c in cases]
    return cases[int(np.argmax(boxes))]


def _in_fresh_process(fn, args):
    with mp.get_context('spawn').Pool(1) as pool: return pool.apply(fn, (args,))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data())
    ap.add_argument('--cases', type=int, default=5, help='real cases for preprocessing and metrics')
    ap.add_argument('--sizes', type=int, nargs='+', default=[64, 96], help='training patch sizes')
    ap.add_argument('--steps', type=int, default=3, help='timed training steps per method and size (after one warm-up); the median is reported')
    ap.add_argument('--overlap', type=float, default=0.5)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--json', type=Path)
    ap.add_argument('--only', choices=['regions'], default=None, help='regions: only the four-modality three-region step and prediction against the binary FLAIR ones')
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
    if a.only == 'regions': return _regions_only(a, res)
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
    res['train'] = [_in_fresh_process(_train_step, (m, s, a.steps, a.device)) for s in a.sizes for m in METHODS]
    for s in a.sizes:
        st = {r['method']: r['seconds'] for r in res['train'] if r['patch'] == s}
        res.setdefault('uamt_over_mt', {})[str(s)] = st['uamt'] / st['mt']
    # prediction of the first case and of the case with the largest brain box in the data set (the slowest)
    largest = largest_case(find_cases(a.data))
    res['predict'] = [_in_fresh_process(_predict, (str(c.flair), a.device, a.overlap))
                      for c in ([cases[0]] if largest.id == cases[0].id else [cases[0], largest])]
    res['predict'].append(_in_fresh_process(_predict, (str(largest.flair), a.device, a.overlap, {}, 3)))   # a 3-fold ensemble
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
    pairs = _in_fresh_process(_region_pairs, (a.sizes[0], 4, a.device))
    res['regions_step'] = dict(patch=a.sizes[0], pairs=pairs, ratio=statistics.median(y / x for x, y in pairs),
                               ratio_range=[min(y / x for x, y in pairs), max(y / x for x, y in pairs)])
    if all(getattr(case, m) is not None for m in FOUR['modalities']):
        res['predict_regions'] = [_in_fresh_process(_predict, (str(case.flair), a.device, a.overlap, s, 1, o))
                                  for s, o in (({}, {}), (FOUR, {m: str(case.path(m)) for m in FOUR['modalities'][1:]}))]


def _regions_only(a, res) -> int:
    from brats_ssl.io import find_cases, write_json
    m = res['machine']
    print(f"brats_ssl benchmark on {m['platform']}, {m['cpus']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), device {m['device']}")
    print("| what | figure |\n|:---|---:|")
    _measure_regions(a, res, largest_case(find_cases(a.data)))
    _print_regions(res)
    if a.json: write_json(res, a.json); print(f"written {a.json}")
    return 0


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
