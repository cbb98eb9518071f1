"""Two ideas for a faster supervised step, each timed against the package's own step in interleaved pairs.

    python benchmarks/bench_step_variants.py --variant compile|no-norm [--size 64] [--pairs 6]

- `compile`: the same model under `torch.compile` (inductor, which fuses batch norm and ReLU into loops of its own).
  Its compile time, paid once per patch shape, is printed apart.
- `no-norm`: every `BatchNorm3d` replaced by an identity. Not a model to train (the learning rate is set to 1e-9 so
  that it does not diverge): the bound on what any fusion of batch norm with ReLU could save, since a fused kernel
  still has batch norm's arithmetic to do.

One fresh process builds both (UNet3D(16..256), 2 labelled patches of size^3, the loop's own `train_step`, under
`heap_cache` as `train` runs it on a CPU), warms each up, then times the pairs: the package's step right before the
variant's. Prints each pair and the median ratio variant / package with its range.
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_fresh_process, stepper, report_pairs  # noqa: E402


def _variant(model, variant: str):
    "The model to step with: compiled, or with every BatchNorm3d replaced by an identity."
    import torch, torch.nn as nn
    if variant == 'compile': return torch.compile(model)
    for m in list(model.modules()):
        for name, ch in list(m.named_children()):
            if isinstance(ch, nn.BatchNorm3d): setattr(m, name, nn.Identity())
    return model


def _pairs(args):
    size, pairs, variant = args
    base, _, heap = stepper('unet', size, 'cpu')
    var, _, _ = stepper('unet', size, 'cpu', dict(lr=1e-9) if variant == 'no-norm' else None,
                         lambda model: _variant(model, variant))
    with heap:
        base(); first = var(); base(); var()                           # warm-up; the variant's first step compiles
        return first, [(base(), var()) for _ in range(pairs)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--variant', choices=['compile', 'no-norm'], required=True)
    ap.add_argument('--size', type=int, default=64); ap.add_argument('--pairs', type=int, default=6)
    a = ap.parse_args(argv)
    first, res = in_fresh_process(_pairs, (a.size, a.pairs, a.variant))
    print(f"the variant's first step (with any compilation): {first:.1f} s")
    report_pairs(res, 'brats_ssl', a.variant, f"supervised step at {a.size}^3, {a.variant}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
