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


def test_reproduce_other_ranks_train_but_do_not_write_results(tmp_path, monkeypatch):
    """Under torchrun every rank runs `reproduce`; only rank 0 predicts, scores and writes the tables, so that each file
    is written once. (RANK without WORLD_SIZE: one process that believes it is rank 1.)"""
    from brats_ssl.pipeline import reproduce
    monkeypatch.setenv('RANK', '1')
    assert reproduce(tmp_path, budget='tiny', methods=['unet'], progress=False) == {}
    assert (tmp_path/'runs'/'unet_seed0'/'checkpoint_best.pt').exists()
    assert not (tmp_path/'predictions').exists() and not (tmp_path/'table1.md').exists()
    monkeypatch.setenv('RANK', '0')
    s = reproduce(tmp_path, budget='tiny', methods=['unet'], progress=False)                 # rank 0 reuses the run, writes all
    assert set(s) == {'UNet3D', 'Threshold (no learning)'} and (tmp_path/'table1.md').exists()
