"Several processes on the CPU (gloo), launched as on a two-GPU Kaggle machine; mixed precision and channels-last on the CPU."
import json, os, re, subprocess, sys
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
    r = launch('train', '--data', synthetic, *TINY, '--freeze-epochs', 1, '--epochs', 1, '--lr', 1e-3, '--out', out, '--k', 2,
               '--cache', tmp_path/'stores')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert r.stdout.count('Done: accuracy') == 1, r.stdout            # one process reports
    assert r.stdout.count('Image store:') == 1, r.stdout             # the main process decodes the images once; the other reads its store
    assert [p.name.split('-')[1] for p in (tmp_path/'stores').iterdir()] == ['48px'], list((tmp_path/'stores').iterdir())
    assert '2 processes' in r.stdout, r.stdout
    bars = re.findall(r'Epoch 1/1 : \|-+\| 0\.00% \[0/6 ', r.stdout)   # a training bar starting: 6 steps of 4 images a process
    assert len(bars) == 2, r.stdout[-3000:]                          # one per fit (frozen, unfrozen): the main process's only
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
    # self-training in a launch: the teacher is that model; the main process pseudo-labels, both train the student
    st = launch('train', '--data', synthetic, *TINY, '--freeze-epochs', 0, '--epochs', 1, '--lr', 1e-3, '--k', 2, '--out', tmp_path/'student',
                '--unlabelled', synthetic/'seg_pred/seg_pred', '--teacher', out/'model.pkl', '--threshold', 0.2, '--no-progress')
    assert st.returncode == 0, st.stdout[-3000:] + st.stderr[-5000:]
    assert st.stdout.count('Pseudo-labels:') == 1 and st.stdout.count('Done: accuracy') == 1, st.stdout
    run = json.loads((tmp_path/'student'/'run.json').read_text())
    assert run['processes'] == 2 and run['n_pseudo'] == int(pd.read_csv(tmp_path/'student'/'pseudo_labels.csv').keep.sum())

def test_lr_find_runs_once_and_every_process_takes_its_rate(synthetic, tmp_path):
    out = tmp_path/'run'
    r = launch('train', '--data', synthetic, *TINY, '--freeze-epochs', 0, '--epochs', 1, '--lr', 'valley', '--lr-find-it', 10, '--out', out, '--k', 2)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    lr = json.loads((out/'state.json').read_text())['lr']
    assert (out/'lr_find.png').is_file() and 1e-7 < lr < 1
    assert json.loads((out/'run.json').read_text())['lr'] == lr


LAUNCH_DOWNLOAD = '''
import json, os, sys, urllib.request
from pathlib import Path
import torch
site, out, data = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
_urlopen = urllib.request.urlopen
def urlopen(url, *a, **k):   # download.pytorch.org, played by the slow server on loopback
    u = url if isinstance(url, str) else url.full_url
    return _urlopen(site + u.rsplit('/', 1)[-1] if u.startswith('https://download.pytorch.org/') else url, *a, **k)
urllib.request.urlopen = urlopen
import scene_cls.model
from scene_cls.distributed import launch
from scene_cls.experiment import scene_run
_load = scene_cls.model.load_pretrained
def load_pretrained(model, arch, weights):   # each process says which weights it loaded
    res = _load(model, arch, weights)
    (out/f"loaded-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(float(sum(p.double().sum() for p in res.state_dict().values()))))
    return res
scene_cls.model.load_pretrained = load_pretrained
def train(): scene_run(data, out/'run', arch='mobilenet_v3_small', weights='imagenet', sizes=(48,), freeze_epochs=1, epochs=0, bs=8,
                       lr=1e-3, k=0, progress=False, check='off', cache=False)
launch(train, 2, 0)
'''

def test_a_launch_downloads_the_weights_once(synthetic, tmp_path):
    "A fresh session (empty weights cache): two processes of a launch, one download (the main process's), the same weights in both"
    import torchvision
    from harness import SlowFiles
    url = torchvision.models.get_model_weights('mobilenet_v3_small').DEFAULT.url
    site = tmp_path/'site'; site.mkdir()
    sd = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    torch.save(sd, site/url.rsplit('/', 1)[-1])
    script = tmp_path/'launch.py'; script.write_text(LAUNCH_DOWNLOAD)
    env = {**os.environ, 'TORCH_HOME': str(tmp_path/'torch'), 'MPLBACKEND': 'Agg', 'PYTHONUNBUFFERED': '1', 'SCENE_CLS_KAGGLE_INPUT': str(tmp_path/'input')}
    with SlowFiles(site, chunk=512*1024, pause=0.1) as srv:    # ~3 s for the file: both processes would be downloading at once
        r = subprocess.run([sys.executable, script, srv.url, tmp_path, synthetic], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert srv.gets == ['/' + url.rsplit('/', 1)[-1]], srv.gets                       # one download
    cache = tmp_path/'torch'/'hub'/'checkpoints'
    assert [f.name for f in cache.iterdir()] == [url.rsplit('/', 1)[-1]]               # one file, no temporary left
    want = float(sum(v.double().sum() for v in sd.values()))
    got = [json.loads((tmp_path/f'loaded-{rank}.json').read_text()) for rank in (0, 1)]
    assert got == pytest.approx([want, want], rel=1e-9), (got, want)                 # both processes loaded the served weights
    assert json.loads((tmp_path/'run'/'run.json').read_text())['processes'] == 2
