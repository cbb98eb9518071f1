"""Whole-case prediction in slabs with `heap_release` (the default) against one whole-volume pass, in fresh processes.

    python benchmarks/bench_predict.py [--data DIR] [--reps 3] [--checkpoint PT] [--device cpu] [--all] [--full-volume]
                                       [--windows DxHxW ...]

For the first case and the case with the largest brain box: read + preprocess + predict + restore (`predict_case`)
with UNet3D(16..256) at 1 mm, the paper's network (random weights with non-trivial batch-norm statistics, the same in
every process; or `--checkpoint`). Each run is a fresh process, so that its peak resident memory (VmHWM, or the CUDA
peak) is its own; the two ways alternate. 'whole' is the earlier pass (no slabs, glibc's default heap, tiles
of the training patch beyond `MAX_WINDOW_VOXELS`).
Prints every run (seconds, peak MB, the memory already held before prediction), then per case the median time ratio
slabs / whole with its range, and what changed: the mask voxels that differ and the largest difference of the tumour
probability on the preprocessed grid.

`--all`: only the default way (slabs), once on every case: time, peak and window per case, then the largest peak.
`--full-volume`: the same comparison on the largest case with its zero background replaced by noise (uniform in
[1, 10), seed 0), so that the brain box is the whole 240x240x155 grid, as in a scan that was never skull-stripped:
the window exceeds `MAX_WINDOW_VOXELS`, and overlapping tiles cover the volume (of the patch before; now
`inference_window`'s near-cubic windows of at most `MAX_WINDOW_VOXELS`, in slabs). The masks then differ by more
than rounding, so their Dice is printed.
`--windows`: instead of the two ways, slabs with each of these windows forced in turn (array order, e.g. 160x128x240),
alternating, time and peak of each; with `--full-volume`, other tilings of the whole grid than `inference_window`'s.
"""
from __future__ import annotations
import argparse, math, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_fresh_process, peak_mb, largest_case, default_data  # noqa: E402


def _rss_mb() -> float:
    "The memory this process holds now (VmRSS)."
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024


def _run(args) -> dict:
    flair_path, way, checkpoint, device, with_probs, *window = args
    import contextlib, torch, SimpleITK as sitk
    import brats_ssl.infer as infer
    from brats_ssl.io import read_image
    from brats_ssl.preprocess import preprocess_case
    from brats_ssl.train import TrainConfig, network, load_checkpoint, model_from_checkpoint
    from brats_ssl.scale import resolve_device
    dev = resolve_device(device)
    if way == 'whole':        # the pass before: no slabs, glibc's default heap, tiles of the patch beyond MAX_WINDOW_VOXELS
        infer.SLAB_MIN_VOXELS, infer.heap_release = float('inf'), lambda: contextlib.nullcontext()
        rule = infer.inference_window
        def before(shape, patch, multiple, max_voxels, overlap):
            whole = rule(shape, patch, multiple, float('inf'))
            return whole if math.prod(whole) <= max_voxels else tuple(patch)
        infer.inference_window = before
    if window: infer.inference_window = lambda *_, **__: tuple(window[0])     # --windows: this one, whatever the volume
    if checkpoint:
        state = load_checkpoint(checkpoint)
        model, cfg = model_from_checkpoint(state, dev), TrainConfig.from_dict(state['config'])
    else:
        torch.manual_seed(0)
        cfg = TrainConfig(device=device); model = network(cfg, dev).eval()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d): m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 2)
    flair = read_image(flair_path, 'FLAIR')
    held = _rss_mb()
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    pre = preprocess_case(flair)
    mask, _ = infer.predict_case(model, pre, cfg.patch, 0.5, device=dev, amp=dev.type == 'cuda')
    secs = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else peak_mb()
    x = sitk.GetArrayFromImage(pre.image)
    fg = infer.sliding_window(model, x, cfg.patch, 0.5, device=dev, amp=dev.type == 'cuda')[1:].sum(0).numpy() if with_probs else None
    return dict(way=way, seconds=secs, peak_mb=peak, held_mb=held, window='x'.join(map(str, x.shape)), mask=sitk.GetArrayFromImage(mask), fg=fg)


def _once(label: str, flair, way: str, a, with_probs: bool = False, *window) -> dict:
    "One run of `_run` in a fresh process (with `window` forced, if given), printed."
    r = in_fresh_process(_run, (str(flair), way, a.checkpoint, a.device, with_probs, *window))
    print(f"{label} (crop {r['window']}) {way:5s}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB "
          f"(held before: {r['held_mb']:.0f} MB)", flush=True)
    return r


def _full_volume(flair, out: Path) -> Path:
    "`flair` with its background replaced by noise in [1, 10) (seed 0), written to `out`: a brain box of the whole grid."
    import numpy as np, SimpleITK as sitk
    from brats_ssl.preprocess import brain_mask
    img = sitk.ReadImage(str(flair)); arr = sitk.GetArrayFromImage(img).astype(np.float32)
    bg = ~brain_mask(arr)
    arr[bg] = np.random.default_rng(0).uniform(1, 10, int(bg.sum()))
    noisy = sitk.GetImageFromArray(arr); noisy.CopyInformation(img)
    sitk.WriteImage(noisy, str(out)); return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--checkpoint', default=None); ap.add_argument('--device', default='cpu')
    ap.add_argument('--all', action='store_true', help='only slabs, once on every case')
    ap.add_argument('--full-volume', action='store_true', help='the comparison on the largest case with its background replaced by noise: a whole-grid brain box')
    ap.add_argument('--windows', nargs='+', default=None, help='compare these forced windows (DxHxW, array order) in slabs instead')
    a = ap.parse_args(argv)
    import numpy as np, tempfile
    from brats_ssl.io import find_cases
    cases = find_cases(a.data)
    if a.all:
        runs = [_once(c.id, c.flair, 'slabs', a) for c in cases]
        top = max(range(len(runs)), key=lambda i: runs[i]['peak_mb'])
        print(f"{len(runs)} cases: peak median {statistics.median(r['peak_mb'] for r in runs):.0f} MB, largest "
              f"{runs[top]['peak_mb']:.0f} MB ({cases[top].id}); time median {statistics.median(r['seconds'] for r in runs):.2f} s, "
              f"range {min(r['seconds'] for r in runs):.2f}-{max(r['seconds'] for r in runs):.2f} s")
        return 0
    todo = [(c.id, c.flair) for c in dict.fromkeys([cases[0], largest_case(cases)])]
    if a.full_volume:
        c, tmp = largest_case(cases), tempfile.TemporaryDirectory()
        todo = [(f'{c.id} with a noisy background', _full_volume(c.flair, Path(tmp.name) / f'{c.id}_fullbox_flair.nii.gz'))]
    for cid, flair in todo:
        if a.windows:
            wins = {w: tuple(int(v) for v in w.split('x')) for w in a.windows}
            runs = {w: [] for w in wins}
            for rep in range(a.reps):
                for w in wins: runs[w].append(_once(f'{cid}, window {w}', flair, 'slabs', a, False, wins[w]))
            for w, rs in runs.items():
                print(f"{cid}, window {w}: time median {statistics.median(r['seconds'] for r in rs):.1f} s, "
                      f"peak median {statistics.median(r['peak_mb'] for r in rs):.0f} MB")
            continue
        runs = {'whole': [], 'slabs': []}
        for rep in range(a.reps):
            for way in runs:              # the probabilities, for what changed, from the first pair only
                runs[way].append(_once(cid, flair, way, a, rep == 0))
        w, s = runs['whole'], runs['slabs']
        ratios = [y['seconds'] / x['seconds'] for x, y in zip(w, s)]
        m0, m1 = w[0]['mask'] > 0, s[0]['mask'] > 0
        print(f"{cid}: slabs / whole time median {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}x); "
              f"peak {statistics.median(x['peak_mb'] for x in w):.0f} -> {statistics.median(y['peak_mb'] for y in s):.0f} MB; "
              f"masks differ in {int((m0 != m1).sum())} voxels (Dice {2 * (m0 & m1).sum() / max(m0.sum() + m1.sum(), 1):.4f}); "
              f"largest tumour-probability difference {float(np.abs(w[0]['fg'] - s[0]['fg']).max()):.1e}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
