"""What a GPU run needs from the training step, checked on the CPU: it reads nothing back from the device."""
from collections import Counter
import torch
from brats_ssl.train import TrainConfig, build, train_step, TINY


def test_a_step_reads_nothing_back(monkeypatch):
    """A CUDA step runs ahead of the host until something reads a value back (`.item()`, `float()`, `bool()` of a
    tensor, `.tolist()`): each read waits for the GPU. A UAMT step must read none (the loop reads the logged numbers
    once every `LOG_EVERY` steps). On the CPU every tensor claims to be on CUDA here, so that the input checks that
    only run on CPU tensors are skipped as they are on a GPU."""
    cfg = TrainConfig(method='uamt', iterations=10, **TINY)
    model, method, opt = build(cfg, torch.device('cpu'))
    batch = (torch.randn(2, 1, 16, 16, 16), torch.randint(0, 2, (2, 16, 16, 16)), torch.randn(2, 1, 16, 16, 16))
    reads = Counter()
    monkeypatch.setattr(torch.Tensor, 'is_cuda', property(lambda self: True))
    for name in ('item', 'tolist', '__float__', '__int__', '__bool__', '__format__', 'numpy'):
        orig = getattr(torch.Tensor, name)
        def counted(self, *a, _orig=orig, _name=name, **k):
            reads[_name] += 1
            return _orig(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    logs = train_step(model, method, opt, batch, 3, cfg, torch.device('cpu'))
    monkeypatch.undo()
    assert dict(reads) == {}, reads
    assert set(logs) >= {'loss', 'ce', 'dice', 'consistency', 'kept', 'lr'} and torch.is_tensor(logs['loss'])
