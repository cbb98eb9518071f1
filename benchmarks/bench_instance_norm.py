"""A training step with PyTorch's `nn.InstanceNorm3d` against one with `brats_ssl.models.InstanceNorm3d`, interleaved.

    python benchmarks/bench_instance_norm.py [--method unet] [--size 48] [--filters 8 16 32 64] [--pairs 8]

Both runs are built in this one process with the same seed and settings (the `cpu-3mm` budget's network by default:
UNet3D(8..64), instance norm, channels-last, batch 2 labelled + 2 unlabelled patches), warmed up with two steps each,
then timed in pairs, one step of each, so that both see the same machine. Prints each pair and the median ratio.
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
import torch
from torch import nn
import brats_ssl.models as M
from brats_ssl.train import TrainConfig, build, train_step
from brats_ssl.scale import heap_cache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report_pairs  # noqa: E402


def stepper(ours: bool, a):
    M.NORMS['instance'] = M.InstanceNorm3d if ours else (lambda c: nn.InstanceNorm3d(c, affine=True))
    try:
        torch.manual_seed(0)
        cfg = TrainConfig(method=a.method, patch=(a.size,) * 3, filters=tuple(a.filters), norm='instance', device='cpu', lr=0.1, T=4, iterations=500)
        model, meth, opt = build(cfg, torch.device('cpu'))
    finally:
        M.NORMS['instance'] = M.InstanceNorm3d
    fmt = torch.channels_last_3d
    g = torch.Generator().manual_seed(1)
    xl = torch.randn(2, 1, a.size, a.size, a.size, generator=g).to(memory_format=fmt)
    yl = (torch.rand(2, a.size, a.size, a.size, generator=g) > 0.8).long()
    xu = torch.randn(2, 1, a.size, a.size, a.size, generator=g).to(memory_format=fmt)
    it = iter(range(10 ** 9))
    def step() -> float:
        i = next(it)
        t = time.perf_counter()
        train_step(model, meth, opt, (xl, yl, xu if meth.semi_supervised else None), i, cfg, torch.device('cpu'))   # the loop's own step
        return time.perf_counter() - t
    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--method', default='unet'); ap.add_argument('--size', type=int, default=48)
    ap.add_argument('--filters', type=int, nargs='+', default=[8, 16, 32, 64]); ap.add_argument('--pairs', type=int, default=8)
    a = ap.parse_args(argv)
    theirs, ours = stepper(False, a), stepper(True, a)
    with heap_cache(True):
        for _ in range(2): theirs(); ours()
        res = [(theirs(), ours()) for _ in range(a.pairs)]
    report_pairs(res, "PyTorch's", 'ours', f"{a.method} step at {a.size}^3, UNet3D{tuple(a.filters)}, {torch.get_num_threads()} threads")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
