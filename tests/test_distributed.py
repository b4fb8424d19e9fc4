"Several processes on the CPU (gloo), launched as on a two-GPU Kaggle machine; mixed precision and channels-last on the CPU."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch
from conftest import run_cli, TINY

def launch(*args, n=2, timeout=600):
    "`accelerate launch` with `n` processes (the launcher Kaggle's two T4s use), here on the CPU with the gloo backend"
    launcher = Path(sys.executable).parent/'accelerate'
    if not launcher.exists(): pytest.skip('accelerate is not installed (pip install "scene_cls[dev]")')
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    cmd = [str(launcher), 'launch', '--multi_gpu', '--num_processes', str(n), '--num_machines', '1', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_port', '0', '-m', 'scene_cls.cli', *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)

def test_two_processes_train_one_model(synthetic, tmp_path):
    out = tmp_path/'run'
    r = launch('train', '--data', synthetic, *TINY, '--freeze-epochs', 1, '--epochs', 1, '--lr', 1e-3, '--out', out, '--k', 2)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert r.stdout.count('Done: accuracy') == 1, r.stdout            # one process reports
    assert '2 processes' in r.stdout, r.stdout
    log = pd.read_csv(out/'log.csv')
    assert log.epoch.tolist() == [0, 1] and log.stage.tolist() == [0, 1]     # every epoch once, by one writer
    assert json.loads((out/'state.json').read_text())['epochs_done'] == 2
    n_train = json.loads((out/'run.json').read_text())['n_train']
    assert (log.steps == n_train//8).all(), log            # bs 8 is the step's batch: 4 per process, the steps of one process
    assert not list(out.glob('*.partial'))
    # the export is a plain single-process model that loads and predicts
    p = run_cli('predict', out/'model.pkl', synthetic/'seg_pred', '--out', tmp_path/'p.csv', '--no-progress')
    assert p.returncode == 0, p.stderr
    preds = pd.read_csv(tmp_path/'p.csv')
    assert len(preds) == 5 and preds.error.isna().all()

def test_lr_find_runs_once_and_every_process_takes_its_rate(synthetic, tmp_path):
    out = tmp_path/'run'
    r = launch('train', '--data', synthetic, *TINY, '--freeze-epochs', 0, '--epochs', 1, '--lr-find-it', 10, '--out', out, '--k', 2)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    lr = json.loads((out/'state.json').read_text())['lr']
    assert (out/'lr_find.png').is_file() and 1e-7 < lr < 1
    assert json.loads((out/'run.json').read_text())['lr'] == lr

SYNC_BN = """
import json, sys, torch, torch.nn as nn
from pathlib import Path
from accelerate import debug_launcher
from fastai.vision.all import set_seed, rank_distrib
from scene_cls.augment import scene_aug_dls
from scene_cls.learner import scene_learner
from scene_cls.distributed import distributed, init_distributed
DATA, WEIGHTS, OUT = sys.argv[1:4]
bns = lambda m: [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]
def work():
    init_distributed(); set_seed(0)
    learn = scene_learner(scene_aug_dls(DATA, size=48, bs=8), 'resnet18', weights=WEIGHTS, path=OUT)
    before = torch.cat([b.running_mean.clone() for b in bns(learn.model)])
    with distributed(learn, sync_bn=True):
        during = sorted({type(b).__name__ for b in bns(learn.model)})
        with learn.no_bar(): learn.fit_one_cycle(1, 1e-3)      # the frozen stage: batchnorm in eval, so gloo needs no sync
    after = torch.cat([b.running_mean for b in bns(learn.model)])
    Path(OUT, f'rank{rank_distrib()}.json').write_text(json.dumps(dict(during=during, after=sorted({type(b).__name__ for b in bns(learn.model)}),
                                                                     moved=float((after - before).abs().max()))))
if __name__ == '__main__': debug_launcher(work, num_processes=2)
"""

def test_sync_batchnorm_stays_frozen_and_goes_back_to_plain(synthetic, tmp_path):
    "Two processes (gloo) with synchronised batchnorm forced on: the frozen stage moves no statistic, and the model ends plain"
    import torchvision
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path/'r18.pth')
    (tmp_path/'sync_bn.py').write_text(SYNC_BN)
    env = {**os.environ, 'MPLBACKEND': 'Agg', 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, tmp_path/'sync_bn.py', synthetic, tmp_path/'r18.pth', tmp_path], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    for rank in (0, 1):
        res = json.loads((tmp_path/f'rank{rank}.json').read_text())
        assert res['during'] == ['SyncBatchNorm'] and res['after'] == ['BatchNorm2d'] and res['moved'] == 0, res
