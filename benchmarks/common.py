"""What the benchmark scripts share: the data folder, fresh processes, one timed training step, one timed prediction,
and the report of interleaved pairs. The scripts import what they share from here, not from each other (bench.py and
bench_metrics.py share the medpy comparison). Speed is never asserted by a test: these only measure."""
from __future__ import annotations
import itertools, multiprocessing as mp, resource, statistics, time
from pathlib import Path


def default_data() -> Path:
    "The real BraTS folder: $BRATS_DATA, else ../shared/data/brats18 beside the repository."
    from brats_ssl.io import default_data_dir
    return default_data_dir()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stepper(method: str, size: int, device: str, settings: dict | None = None, modify=None):
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


def train_steps(args) -> dict:
    method, size, steps, device, *settings = args
    import torch
    step, dev, heap = stepper(method, size, device, *settings)
    with heap as kept:
        times = [step() for _ in range(steps + 1)][1:]               # the first step warms up (and runs cuDNN's autotuner)
        peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else peak_mb()
    # the median step: robust to the odd step slowed by the rest of a shared machine
    return dict(method=method, patch=size, seconds=statistics.median(times), step_seconds=times, peak_mb=peak, heap_cache=kept)


def predict_timed(args) -> dict:
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
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else peak_mb()
    window = inference_window(pre.image.GetSize()[::-1], cfg.patch, model.size_multiple)
    return dict(case=Path(flair_path).name, size=list(flair.GetSize()), cropped=list(pre.image.GetSize()),
                patch=list(cfg.patch), window=list(window[::-1]), overlap=overlap, seconds=secs, peak_mb=peak, members=members,
                channels=len(cfg.modalities), classes=2 if cfg.regions == ('wt',) else 4)


FOUR = dict(modalities=('flair', 't1', 't1ce', 't2'), regions=('wt', 'tc', 'et'))

def region_pairs(args) -> list[tuple[float, float]]:
    "Pairs of UAMT steps, the binary FLAIR-only run then the four-modality three-region run, interleaved in one process."
    size, pairs, device = args
    (one, _, heap), (four, _, _) = stepper('uamt', size, device), stepper('uamt', size, device, FOUR)
    with heap:
        one(); four()                                                 # warm-up
        return [(one(), four()) for _ in range(pairs)]


def shipped_pairs(args) -> dict:
    """Pairs of whole-case predictions by the shipped model `name` (`predict_dataset`: read, preprocess, predict, restore,
    write), without then with test-time mirroring, interleaved in one process after one warm-up of each."""
    name, data, case_id, pairs, device = args
    import shutil, tempfile
    from brats_ssl.io import find_cases
    from brats_ssl.pipeline import predict_dataset, pretrained_checkpoints
    ck, case = pretrained_checkpoints(name), [c for c in find_cases(data) if c.id == case_id]
    tmp = Path(tempfile.mkdtemp())
    def once(mirror: bool) -> float:
        shutil.rmtree(tmp/'out', ignore_errors=True)
        t = time.perf_counter(); predict_dataset(ck, case, tmp/'out', device=device, progress=False, mirror=mirror)
        return time.perf_counter() - t
    once(False); once(True)                                           # warm-up
    res = [(once(False), once(True)) for _ in range(pairs)]
    shutil.rmtree(tmp)
    return dict(model=name, case=case_id, pairs=res, peak_mb=peak_mb())


def largest_case(cases):
    "The case with the largest brain box (the slowest to predict) among `cases`."
    import numpy as np, SimpleITK as sitk
    from brats_ssl.io import read_image
    from brats_ssl.preprocess import bounding_box, brain_mask
    boxes = [np.prod(bounding_box(brain_mask(sitk.GetArrayFromImage(read_image(c.flair, 'FLAIR'))))[1]) for c in cases]
    return cases[int(np.argmax(boxes))]


def in_fresh_process(fn, args):
    with mp.get_context('spawn').Pool(1) as pool: return pool.apply(fn, (args,))


def report_pairs(res: list[tuple[float, float]], a: str, b: str, what: str) -> None:
    "Print each timed pair (a step of `a`, then one of `b`) and the median of the ratios b / a with their range."
    for k, (x, y) in enumerate(res):
        print(f"pair {k + 1}/{len(res)}: {a} {x:.3f} s, {b} {y:.3f} s, ratio {y / x:.2f}")
    r = [y / x for x, y in res]
    print(f"{what}, {len(res)} pairs: {b} / {a} median {statistics.median(r):.2f}x (range {min(r):.2f}-{max(r):.2f}x; "
          f"median steps {statistics.median(x for x, _ in res):.3f} s and {statistics.median(y for _, y in res):.3f} s)")
