"""The Kaggle/Colab road, rehearsed on the CPU as a GPU run would take it.

- the tripwire: the whole of `10_intel_resnet50` (self-training on, the launch cell run twice) runs with two GPUs named by `nvidia-smi`,
  `torch.cuda.is_available()` True and any CUDA initialisation in the notebook's process raising; the launched processes train on the CPU;
- the rehearsal (`scripts/rehearse.py`): a fresh environment per platform with that platform's packages at its
  versions (`scripts/platforms/`) and without scene_cls, the wheels as a Kaggle dataset (what scene_cls needs beyond
  the platform's packages), the real sample in Kaggle's layout, the notebook run by papermill with small parameters:
  on Kaggle in two processes through the notebook's own launch cell with the internet off, on Colab with the data
  downloaded by a stand-in kagglehub; neither may change a package of the platform's.
"""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from conftest import REPO, INTEL_SAMPLE

NB10, NB11 = REPO/'notebooks'/'10_intel_resnet50.ipynb', REPO/'notebooks'/'11_further.ipynb'

def cells(nb:Path) -> list:
    return json.loads(nb.read_text())['cells']

def tagged(nb:Path, tag:str) -> str:
    return next(''.join(c['source']) for c in cells(nb) if tag in c.get('metadata', {}).get('tags', []))

def test_one_install_cell_pinned_to_the_package_version():
    "Both notebooks install the same way, at the tag of the package's own version (never HEAD)"
    import scene_cls
    a, b = tagged(NB10, 'install'), tagged(NB11, 'install')
    assert a == b
    assert f"SCENE_CLS_VERSION = '{scene_cls.__version__}'" in a and '@v{SCENE_CLS_VERSION}' in a and '--no-index' in a

TRIPWIRE = """
import os, sys, traceback, torch
def _cuda_touched(*a, **k): raise RuntimeError("CUDA was initialised in the notebook's process")
torch.cuda.is_available = lambda: True          # as on a GPU machine
torch.cuda._lazy_init = torch.cuda.init = _cuda_touched
def _cpu_child(): torch.cuda.is_available = lambda: False   # a launched process: here without a GPU, it trains on the CPU
os.register_at_fork(after_in_child=_cpu_child)
import accelerate
def _notebook_launcher(fn, args=(), num_processes=None, **kw):
    "Accelerate's launcher on two GPUs, played on the CPU: the same fork, then two gloo processes (debug_launcher)"
    assert not torch.cuda.is_initialized()
    print(f"LAUNCH notebook_launcher num_processes={num_processes}", flush=True)
    pid = os.fork()
    if pid == 0:
        try:
            from scene_cls.distributed import launch
            launch(fn, num_processes, gpus=0); os._exit(0)
        except BaseException: traceback.print_exc(); os._exit(1)
    assert os.waitpid(pid, 0)[1] == 0, 'the launched processes failed'
accelerate.notebook_launcher = _notebook_launcher
"""
END = "\nprint('CUDA initialised in the notebook process:', torch.cuda.is_initialized())\n"

def notebook_script(nb:Path, params:dict, again:str=None) -> str:
    "The notebook's code as one script, `params` after its parameters cell, and the cell tagged `again` (if any) run a second time"
    parts = [TRIPWIRE]
    for c in cells(nb):
        if c['cell_type'] != 'code': continue
        src = '\n'.join(l for l in ''.join(c['source']).splitlines() if not l.lstrip().startswith(('!', '%')))
        tags = c.get('metadata', {}).get('tags', [])
        parts.append(src)
        if 'parameters' in tags: parts.append('\n'.join(f'{k} = {v!r}' for k, v in params.items()))
        if again and again in tags: parts.append(src)
    assert again is None or any(again in c.get('metadata', {}).get('tags', []) for c in cells(nb)), f'{nb} has no cell tagged {again}'
    return '\n\n'.join(parts) + END

TINY_SETTINGS = dict(arch='resnet18', weights='none', sizes=(48,), freeze_epochs=1, epochs=1, bs=8, lr=3e-3, k=2, lr_find_it=10)

def test_the_notebook_never_touches_cuda(synthetic, tmp_path):
    "The whole of 10_intel_resnet50 on a two-GPU machine whose CUDA raises if touched: self-training on, the launch cell run twice"
    bin_ = tmp_path/'bin'; bin_.mkdir()
    (bin_/'nvidia-smi').write_text('#!/bin/sh\necho "Tesla T4"\necho "Tesla T4"\n'); (bin_/'nvidia-smi').chmod(0o755)
    script = tmp_path/'notebook.py'
    script.write_text(notebook_script(NB10, dict(data=str(synthetic), out=str(tmp_path/'run'), quick=False, self_training=True, threshold=0.2,
                                                 settings=TINY_SETTINGS), again='launch'))
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'SCENE_CLS_QUICK')}
    env.update(PATH=f"{bin_}:{env['PATH']}", MPLBACKEND='Agg', KAGGLE_KERNEL_RUN_TYPE='Interactive')
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert 'CUDA initialised in the notebook process: False' in r.stdout, r.stdout[-2000:]
    assert 'Tesla T4, Tesla T4' in r.stdout or "['Tesla T4', 'Tesla T4']" in r.stdout, r.stdout
    # the run and the student, each launched once on "two GPUs"; the launch cell run again reads the finished run
    assert r.stdout.count('LAUNCH notebook_launcher num_processes=2') == 2, r.stdout[-3000:]
    assert r.stdout.count('FINISHED run') >= 1, r.stdout[-3000:]
    run, student = json.loads((tmp_path/'run'/'run.json').read_text()), json.loads((tmp_path/'run'/'student'/'run.json').read_text())
    assert run['processes'] == 2 and student['processes'] == 2 and student['n_pseudo'] > 0, (run, student)
    assert len(pd.read_csv(tmp_path/'run'/'predictions.csv')) == len(list((synthetic/'seg_pred'/'seg_pred').iterdir()))
    assert (tmp_path/'run'/'aug_preview.png').is_file() and (tmp_path/'run'/'predictions.png').is_file()

@pytest.mark.slow
def test_further_never_touches_cuda(synthetic, tmp_path):
    "The whole of 11_further on a one-GPU machine whose CUDA raises if touched: every variant, TTA and the cleaning in processes of their own"
    bin_ = tmp_path/'bin'; bin_.mkdir()
    (bin_/'nvidia-smi').write_text('#!/bin/sh\necho "Tesla T4"\n'); (bin_/'nvidia-smi').chmod(0o755)
    script = tmp_path/'further.py'
    script.write_text(notebook_script(NB11, dict(data=str(synthetic), out=str(tmp_path/'further'), quick=False,
                                                 settings={**TINY_SETTINGS, 'weights': 'none'})))
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'SCENE_CLS_QUICK')}
    closed = 'http://127.0.0.1:9'   # no network, whatever the machine has: downloads (Places365's weights) fail at once
    env.update(PATH=f"{bin_}:{env['PATH']}", MPLBACKEND='Agg', HTTP_PROXY=closed, HTTPS_PROXY=closed, http_proxy=closed, https_proxy=closed, NO_PROXY='')
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert 'CUDA initialised in the notebook process: False' in r.stdout, r.stdout[-2000:]
    res = pd.read_csv(tmp_path/'further'/'results.csv', keep_default_na=False)
    assert len(res) == 7, res   # 4 variants, TTA, the cleaned baseline, the noise estimate
    places = res[res.variant.str.contains('Places365')]
    assert places.note.iloc[0].startswith('not measured') and places.accuracy.iloc[0] == '', places   # no weights: said, and the rest ran
    assert (res[~res.variant.str.contains('Places365|noise')].accuracy != '').all(), res

def test_the_tripwire_trips(tmp_path):
    "The tripwire catches what it should: fastai's default device initialises CUDA"
    script = tmp_path/'touch.py'
    script.write_text(TRIPWIRE + '\nfrom fastai.vision.all import default_device\ndefault_device()\n')
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "CUDA was initialised in the notebook's process" in r.stderr, r.stderr[-2000:]

# The package set each platform is rehearsed in (scripts/platforms/<set>.txt, torch included: SCENE_CLS_REHEARSAL_TORCH,
# 'platform' by default, 'disk' for 2.14.1/0.29.1 from this machine's disk). Each platform in its own: Colab's set
# (Python 3.13 there, 3.11 here) and Kaggle's (fastai 2.8.7, fastcore 1.14.5: Kaggle pins fastcore<2).
# SCENE_CLS_REHEARSAL_PACKAGE_SET=colab rehearses both in Colab's set. They run when asked for (`pytest -m platform`:
# 20-40 minutes, more than CI holds; tests/conftest.py), as does `python scripts/rehearse.py`.
PACKAGE_SET = dict(kaggle='kaggle', colab='colab')
if os.environ.get('SCENE_CLS_REHEARSAL_PACKAGE_SET'): PACKAGE_SET = {k: os.environ['SCENE_CLS_REHEARSAL_PACKAGE_SET'] for k in PACKAGE_SET}

@pytest.fixture(scope='module')
def rehearsal(intel_sample, tmp_path_factory):
    "(rehearse, setup, work, unlabelled); `setup(platform)`: (python, wheels, package set) for `platform`'s rehearsal"
    sys.path.insert(0, str(REPO/'scripts'))
    import rehearse
    unlabelled = INTEL_SAMPLE.parent/'intel-unlabelled'
    if not unlabelled.is_dir(): pytest.skip(f'unlabelled images not found at {unlabelled}')
    keep = os.environ.get('SCENE_CLS_REHEARSAL')     # a folder to keep the environments in between runs (6 GB each: torch)
    work = Path(keep or tmp_path_factory.mktemp('rehearsal'))
    wheels = {}
    def setup(platform:str):
        pset = PACKAGE_SET[platform]
        py = rehearse.platform_venv(work, pset)       # made once; scene_cls out again and the platform's versions back
        if pset not in wheels:
            wheels[pset] = work/f'wheels-{pset}'
            shutil.rmtree(wheels[pset], ignore_errors=True)
            rehearse.build_wheels(wheels[pset], pset)
        return py, wheels[pset], pset
    yield rehearse, setup, work, unlabelled
    if not keep: shutil.rmtree(work, ignore_errors=True)

def test_offline_environment_refuses_downloads(tmp_path):
    "The rehearsal's Kaggle without internet: pip, urllib (torchvision's weights), requests and httpx all fail at once, through the closed port"
    sys.path.insert(0, str(REPO/'scripts'))
    import rehearse
    script = tmp_path/'fetch.py'
    script.write_text('''
import importlib.util, subprocess, sys, time, urllib.request
URL = 'https://example.invalid/weights.pth'      # never resolves: a failure that names the proxy port went through the proxy
def attempt(name, fn):
    t = time.time()
    try: fn(); print(name, 'DOWNLOADED')
    except Exception as e: print(name, 'refused' if ('127.0.0.1' in repr(e) or 'refused' in repr(e).lower() or 'proxy' in repr(e).lower()) else f'other: {e!r}', f'{time.time() - t:.1f}s')
attempt('urllib', lambda: urllib.request.urlopen(URL, timeout=10))
if importlib.util.find_spec('requests'):
    import requests; attempt('requests', lambda: requests.get(URL, timeout=10))
if importlib.util.find_spec('httpx'):
    import httpx; attempt('httpx', lambda: httpx.get(URL, timeout=10))
r = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-d', 'dl', 'six'], capture_output=True, text=True, timeout=60)
print('pip-no-index', 'refused' if r.returncode and 'No matching distribution' in r.stderr else f'other: {r.returncode} {r.stderr[-300:]!r}')
env = {k: v for k, v in __import__('os').environ.items() if k != 'PIP_NO_INDEX'}     # the package index, through the proxy
r = subprocess.run([sys.executable, '-m', 'pip', 'download', '-vv', '--no-deps', '--retries', '0', '--timeout', '5', '-d', 'dl', 'six'],
                   capture_output=True, text=True, timeout=60, env=env)
print('pip-index', 'refused' if r.returncode and 'ProxyError' in r.stdout + r.stderr else f'other: {r.returncode} {r.stderr[-300:]!r}')
''')
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, env=rehearse._env({}, offline=True), cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = dict(l.split(' ', 1) for l in r.stdout.splitlines())
    assert {'urllib', 'pip-no-index', 'pip-index'} <= set(lines), r.stdout
    for name, what in lines.items():
        assert what.startswith('refused'), r.stdout
        if what.endswith('s'): assert float(what.split()[-1][:-1]) < 5, r.stdout     # at once, not after a timeout

def check_run(res:dict, n_pred:int, processes:int):
    out = Path(res['out'])
    assert res['run']['processes'] == processes and res['processes'] == processes
    log = pd.read_csv(out/'log.csv')
    assert log.epoch.tolist() == [0, 1] and (log.steps == res['run']['n_train']//32).all(), log   # one writer; the steps of one process
    assert (out/'lr_find.png').is_file() == (res['platform'] == 'kaggle')   # Kaggle's run finds its rate inside the launch
    for f in ('model.pkl', 'aug_batch.png', 'curves.png', 'predictions.png', 'report/confusion_matrix.png',
              'report/gradcam.png', 'report/report.md'):
        assert (out/f).is_file() and (out/f).stat().st_size > 0, f
    assert 'CPU REHEARSAL' in (out/'report'/'report.md').read_text()
    preds = pd.read_csv(out/'predictions.csv')
    assert len(preds) == n_pred and preds.error.isna().all()
    assert res['predict_line'].startswith(f'{n_pred} files: {n_pred} predicted, 0 failed'), res['predict_line']
    assert 290 <= res['run']['n_valid'] <= 300, res['run']
    # real images, a real ImageNet backbone: above chance (1/6) with lr_find's valley (whose lr is low: 31-51% seen), well above with 1e-2
    assert res['run']['accuracy'] > (0.25 if res['platform'] == 'kaggle' else 0.6), res['run']
    nb = json.loads(Path(res['notebook']).read_text())
    errors = [o for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, errors

def test_kaggle_rehearsal_two_processes_offline_wheel(rehearsal, intel_sample):
    rehearse, setup, work, unlabelled = rehearsal
    py, wheels, pset = setup('kaggle')
    res = rehearse.rehearse('kaggle', py, work, wheels, intel_sample, unlabelled, n_pred=24, package_set=pset)   # internet off
    assert res['offline'] and res['package_set'] == pset
    assert 'Running on Kaggle. installed scene_cls' in res['install_line'] and '(offline' in res['install_line'], res['install_line']
    # the install kept the platform's packages, but for what scene_cls's own requirements replace, as build_wheels reported
    # (accelerate: Kaggle's 1.13.0 launcher touches CUDA before the fork with torch >= 2.9); torch never
    forced = json.loads((wheels/'wheels.json').read_text())['upgrades_platform']
    assert set(res['changed']) <= set(forced) and not {'torch', 'torchvision'} & set(forced), (res['changed'], forced)
    check_run(res, 24, 2)
    # the next Kaggle session: this version's output attached as an input, `resume_from` pointing into it
    prev = work/'kaggle'/'input'/'intel-scenes-output'/'runs'/'intel_resnet50'
    shutil.copytree(res['out'], prev)
    again = rehearse.rehearse('kaggle', py, work, wheels, intel_sample, unlabelled, n_pred=24, session=2, params=dict(resume_from=str(prev)),
                              package_set=pset)
    assert 'FINISHED run' in again['text'] and 'NOT training again' in again['text'] and 'rehearsing the launch' not in again['text']
    assert pd.read_csv(Path(again['out'])/'log.csv').equals(pd.read_csv(Path(res['out'])/'log.csv'))
    assert again['run'] == res['run'] and len(pd.read_csv(Path(again['out'])/'predictions.csv')) == 24
    assert not [o for c in json.loads(Path(again['notebook']).read_text())['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']

def test_colab_rehearsal_kagglehub_without_login(rehearsal, intel_sample):
    rehearse, setup, work, unlabelled = rehearsal
    py, wheels, pset = setup('colab')
    res = rehearse.rehearse('colab', py, work, wheels, intel_sample, unlabelled, n_pred=24, params=dict(self_training=True, threshold=0.5),
                            package_set=pset)
    assert 'Running on Colab. installed scene_cls' in res['install_line'], res['install_line']
    assert res['changed'] == {}, res['changed']       # nothing of Colab's upgraded under the user (fastai, fastcore, torch)
    assert res['downloads'] == ['puneet6060/intel-image-classification']
    check_run(res, 24, 1)
    # the notebook's self-training cell: the run's model pseudo-labels seg_pred, a student trains on both
    student = Path(res['out'])/'student'
    srun, pl = json.loads((student/'run.json').read_text()), pd.read_csv(student/'pseudo_labels.csv')
    assert len(pl) == 24 and srun['n_pseudo'] == int(pl.keep.sum()) and srun['teacher_accuracy'] == res['run']['accuracy']
    assert srun['n_train'] == res['run']['n_train'] + srun['n_pseudo'] and 'self-training: teacher' in res['text']
