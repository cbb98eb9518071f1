"""Training under torchrun: 2 CPU processes with the gloo backend.

The ranks' student and teacher weights must be identical after training, the loss must fall, and a run stopped
half-way and resumed under torchrun must end with exactly the weights of the uninterrupted one.
"""
import csv, os, subprocess, sys, textwrap
import pytest
import torch

CFG = dict(method='uamt', iterations=24, patch=[16, 16, 16], filters=[4, 8, 16], T=2, lr=0.05, val_every=12,
           batch_labelled=2, batch_unlabelled=2, device='cpu', fg_prob=0.5)


@pytest.fixture(scope='module')
def prep(tmp_path_factory):
    from brats_ssl.phantom import write_phantoms
    from brats_ssl.preprocess import preprocess_dataset
    from brats_ssl.data import split_cases
    from brats_ssl.io import write_json
    d = tmp_path_factory.mktemp('ddp')
    write_phantoms(d / 'data', n=5, seed=0, size=(40, 40, 28), spacing=(6., 6., 6.))
    ids = preprocess_dataset(d / 'data', d / 'prep', workers=1, progress=False)
    write_json(split_cases(ids, n_labelled=2, n_val=1, n_test=0, seed=0), d / 'prep' / 'split.json')
    return d / 'prep'


def torchrun(tmp_path, prep, out, stop_at=None, resume=False, cfg=CFG):
    """Run the training under `torchrun --nproc_per_node 2`; each rank saves what it holds to out/rank{r}.pt."""
    import json
    script = tmp_path / 'runner.py'
    script.write_text(textwrap.dedent('''
        import json, os, sys
        from pathlib import Path
        import torch
        from brats_ssl.train import TrainConfig, train, build
        import brats_ssl.train as T
        prep, out = sys.argv[1], Path(sys.argv[2])
        cfg, stop_at, resume = TrainConfig(**json.loads(sys.argv[3])), json.loads(sys.argv[4]), sys.argv[5] == '1'
        split = json.loads((Path(prep) / 'split.json').read_text())
        held = {}
        real_build = T.build
        def spy_build(*a, **k):                    # keep a handle on this rank's model and method
            model, method, opt = real_build(*a, **k)
            held.update(model=model, method=method)
            return model, method, opt
        T.build = spy_build
        train(prep, out, split, cfg, progress=False, stop_at=stop_at, resume=resume)
        torch.save(dict(model=held['model'].state_dict(), teacher=held['method'].teacher.state_dict()),
                   out / f"rank{os.environ['RANK']}.pt")
    '''))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo', 'MASTER_ADDR': '127.0.0.1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(script),
           str(prep), str(out), json.dumps(cfg), json.dumps(stop_at), '1' if resume else '0']
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [torch.load(out / f'rank{i}.pt') for i in range(2)]


def assert_same(a: dict, b: dict):
    for part in ('model', 'teacher'):
        assert a[part].keys() == b[part].keys()
        for k in a[part]: assert torch.equal(a[part][k], b[part][k]), (part, k)


def test_two_processes_stay_identical_and_learn(tmp_path, prep):
    out = tmp_path / 'run'
    r0, r1 = torchrun(tmp_path, prep, out)
    assert_same(r0, r1)                                            # the ranks hold the same student and teacher
    with open(out / 'log.csv') as f: rows = list(csv.DictReader(f))
    assert [int(r['iteration']) for r in rows] == list(range(CFG['iterations']))   # rank 0 logs each global iteration once
    loss = [float(r['loss']) for r in rows]
    first, final = sum(loss[:4]) / 4, sum(loss[-4:]) / 4
    assert final < 0.85 * first, (first, final)                     # the loss falls
    from brats_ssl.train import load_checkpoint
    st = load_checkpoint(out / 'checkpoint_last.pt')
    assert st['iteration'] == CFG['iterations'] and len(st['rng_ranks']) == 2
    for k, v in st['model'].items(): assert torch.equal(v, r0['model'][k])
    assert {p.name for p in out.iterdir()} >= {'checkpoint_best.pt', 'checkpoint_last.pt', 'log.csv', 'val.csv', 'config.json'}
    import json
    assert json.loads((out / 'config.json').read_text())['environment']['processes'] == 2


def test_resume_under_torchrun_matches_uninterrupted(tmp_path, prep):
    cfg = {**CFG, 'iterations': 8, 'val_every': 4}
    full = torchrun(tmp_path, prep, tmp_path / 'full', cfg=cfg)
    torchrun(tmp_path, prep, tmp_path / 'resumed', stop_at=4, cfg=cfg)
    resumed = torchrun(tmp_path, prep, tmp_path / 'resumed', resume=True, cfg=cfg)
    assert_same(full[0], resumed[0]); assert_same(resumed[0], resumed[1])
    with open(tmp_path / 'resumed' / 'log.csv') as f:
        assert [int(r['iteration']) for r in csv.DictReader(f)] == list(range(8))
