"Resume that is indistinguishable from never having stopped: SIGKILL at several points, then --resume, on the CPU."
import json, os, signal, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch
from conftest import run_cli, TINY

# A seeded run as a user writes it (augmentations, dropout, shuffling: every source of randomness), 2 frozen and
# 2 unfrozen epochs; `KILL` names where the process kills itself with SIGKILL, as a closed Kaggle session would.
DRIVER = r'''
import os, signal, sys, torch
from pathlib import Path
from fastai.vision.all import set_seed, Callback
from scene_cls.augment import scene_aug_dls
from scene_cls.learner import scene_learner
from scene_cls.recipe import fit_scene
syn, run, kill, resume = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4] == '1'
def die(): os.kill(os.getpid(), signal.SIGKILL)
class Kill(Callback):
    "SIGKILL at stage:epoch:batch, or after a whole stage ('after_stage:0')"
    order = 99
    fits = 0
    def after_batch(self):
        if kill.count(':') == 2 and self.training and [Kill.fits, self.epoch, self.iter] == [int(k) for k in kill.split(':')]: die()
    def after_fit(self):
        if kill == f'after_stage:{Kill.fits}': die()
        Kill.fits += 1
if kill.startswith('in_checkpoint:'):          # the write of the n-th checkpoint dies half-way
    n, real_save, saves = int(kill.split(':')[1]), torch.save, []
    def half_save(obj, f, *a, **k):
        if Path(f).name.startswith('checkpoint.pth.') and str(f).endswith('.partial'):   # write_atomic's temporary file
            saves.append(f)
            if len(saves) == n:
                real_save(obj, f, *a, **k); Path(f).write_bytes(Path(f).read_bytes()[:1000]); die()
        return real_save(obj, f, *a, **k)
    torch.save = half_save
set_seed(1, reproducible=True)
dls_at = lambda s: scene_aug_dls(syn, size=s, bs=8, seed=1, check='off')
learn = scene_learner(dls_at(48), 'resnet18', weights=None, path=run)
if kill != 'none' and not resume: learn.add_cb(Kill())
fit_scene(learn, dls_at, run, epochs=2, freeze_epochs=2, sizes=(48,), lr=2e-3, resume=resume, settings=dict(arch='resnet18'))
torch.save(learn.model.state_dict(), run/'final.pth')
'''

def drive(syn, run, kill='none', resume=False):
    return subprocess.run([sys.executable, '-c', DRIVER, str(syn), str(run), kill, '1' if resume else '0'],
                          capture_output=True, text=True, env={**os.environ, 'MPLBACKEND': 'Agg'}, timeout=600)

@pytest.fixture(scope='module')
def resume_syn(tmp_path_factory):
    from scene_cls.synthetic import make_synthetic_scenes
    return make_synthetic_scenes(tmp_path_factory.mktemp('rsyn'), n_train=8, n_valid=3, n_pred=0, size=64)

@pytest.fixture(scope='module')
def never_stopped(resume_syn, tmp_path_factory):
    run = tmp_path_factory.mktemp('whole')/'run'
    r = drive(resume_syn, run)
    assert r.returncode == 0, r.stderr[-3000:]
    return run

def same_run(a:Path, b:Path):
    wa, wb = torch.load(a/'final.pth'), torch.load(b/'final.pth')
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"
    la, lb = [pd.read_csv(d/'log.csv').drop(columns='seconds') for d in (a, b)]
    pd.testing.assert_frame_equal(la, lb)

@pytest.mark.parametrize('kill', ['0:1:2',            # mid frozen stage (its second epoch, third batch)
                                  'after_stage:0',    # between the stages
                                  '1:1:1',            # mid unfrozen stage
                                  'in_checkpoint:3'])  # half-way through writing the third checkpoint
def test_killed_then_resumed_is_the_run_never_stopped(kill, resume_syn, never_stopped, tmp_path):
    run = tmp_path/'run'
    r = drive(resume_syn, run, kill)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-3000:])
    assert not (run/'final.pth').exists()
    r = drive(resume_syn, run, resume=True)
    assert r.returncode == 0, r.stderr[-3000:]
    same_run(run, never_stopped)
    assert not list(run.glob('*.partial')) or kill.startswith('in_checkpoint')

def test_resume_refuses_other_settings_and_accepts_harmless_ones(synthetic, tmp_path):
    out = tmp_path/'run'
    args = ['train', '--data', synthetic, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', out, '--k', 2]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    other = tmp_path/"other"
    from scene_cls.synthetic import make_synthetic_scenes
    make_synthetic_scenes(other, n_train=2, n_valid=1, n_pred=0, size=64)
    for change, says in [(['--bs', 4], "bs 8 -> 4"), (['--arch', 'resnet34'], "arch 'resnet18' -> 'resnet34'"),
                         (['--size', 64], 'stages'), (['--lr', 1e-2], 'lr 0.001 -> 0.01'), (['--data', other], 'data'),
                         (['--epochs', 2], 'stages'), (['--seed', 3], 'seed 42 -> 3')]:
        r = run_cli(*args, *change, '--resume')
        assert r.returncode == 2, (change, r.stdout, r.stderr)
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and 'cannot resume' in err[0] and says in err[0], (change, err)
    r = run_cli(*args, '--num-workers', 0, '--resume')        # cannot change the result: accepted
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(out/'log.csv').epoch.tolist() == [0]
