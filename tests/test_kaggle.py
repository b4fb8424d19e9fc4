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

INSTALL_CELL = Path(__file__).parent/'install_cell.py'   # the install cell of notebooks 10 and 11 (pasted there from this file)

RUN_INSTALL = '''
import json, sys
sys.modules['scene_cls'] = None          # not installed yet: `import scene_cls` raises ImportError
src = open(sys.argv[1]).read()
ns, calls = {}, []
exec(src[:src.rindex('print(')], ns)     # the cell but its last line, which installs
def pip(*args):                          # pip, as it would succeed, without installing anything
    calls.append(list(args)); sys.modules.pop('scene_cls', None)
    return type('Done', (), dict(returncode=0, stderr=''))()
ns['_pip'] = pip
print(json.dumps(dict(line=ns['install_scene_cls'](), calls=calls)))
'''

def install_from(cell_src:str, inp:Path, cwd:Path) -> dict:
    "Run an install cell with Kaggle's input at `inp`, pip stood in for: what it installed from"
    (cwd/'cell.py').write_text(cell_src); (cwd/'run.py').write_text(RUN_INSTALL)
    env = {**os.environ, 'SCENE_CLS_KAGGLE_INPUT': str(inp), 'KAGGLE_KERNEL_RUN_TYPE': 'Batch'}
    r = subprocess.run([sys.executable, cwd/'run.py', cwd/'cell.py'], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

WHEEL = 'scene_cls-0.1.0-py3-none-any.whl'

LAYOUTS = ['scene-cls-wheels', 'datasets/someone/scene-cls-wheels', 'datasets/someone/scene-cls-wheels/dist/v1']

@pytest.mark.parametrize('cell,where', [(c, w) for c in ('tests/install_cell.py', 'notebook 10', 'notebook 11') for w in LAYOUTS])
def test_install_cell_finds_the_wheel_offline_in_both_input_layouts(cell, where, tmp_path):
    "Kaggle's input of years (/kaggle/input/<slug>/) and of 2026 (/kaggle/input/datasets/<owner>/<slug>/), a folder deeper too"
    import scene_cls
    src = INSTALL_CELL.read_text().replace("'0.1.0'", repr(scene_cls.__version__)) if cell.startswith('tests') else tagged(NB10 if cell.endswith('10') else NB11, 'install')
    inp, work = tmp_path/'input', tmp_path/'working'; work.mkdir()
    (inp/where).mkdir(parents=True)
    wheel = inp/where/WHEEL.replace('0.1.0', scene_cls.__version__); wheel.write_bytes(b'')
    (inp/where/'cleanlab-2.7.0-py3-none-any.whl').write_bytes(b'')
    (inp/'datasets'/'someone'/'old-wheels').mkdir(parents=True)
    (inp/'datasets'/'someone'/'old-wheels'/'scene_cls-0.0.1-py3-none-any.whl').write_bytes(b'')   # another version, attached too
    (inp/'datasets'/'someone'/'loop').symlink_to(inp, target_is_directory=True)                   # a link back up
    (inp/'intel-image-classification'/'seg_train'/'seg_train').mkdir(parents=True)
    res = install_from(src, inp, work)
    assert res['calls'][0] == ['--no-index', '--find-links', str(wheel.parent), f'scene_cls[lite0,kaggle] @ {wheel.as_uri()}'], res
    assert f'the wheel {wheel} (offline' in res['line'], res['line']

def test_install_cell_bounds_its_search(tmp_path):
    "A deep tree and a link loop: the search ends, and nothing deeper than 7 folders is taken"
    inp, work = tmp_path/'input', tmp_path/'working'; work.mkdir()
    deep = inp.joinpath(*[f'd{i}' for i in range(9)]); deep.mkdir(parents=True); (deep/WHEEL).write_bytes(b'')
    (inp/'d0'/'up').symlink_to(inp, target_is_directory=True)
    res = install_from(INSTALL_CELL.read_text(), inp, work)
    assert 'git+https://github.com/scene-cls/scene_cls@v' in res['calls'][0][-1], res     # not found: the repository

def test_notebooks_install_with_the_tested_cell():
    assert tagged(NB10, 'install') == tagged(NB11, 'install') == INSTALL_CELL.read_text().rstrip('\n')

# Kaggle's input as a 2026 notebook sees it, on this machine: `$SCENE_CLS_KAGGLE_INPUT` plays /kaggle/input
KAGGLE_LAYOUTS = {'of years': '{slug}', '2026': 'datasets/{owner}/{slug}', 'a folder deeper': 'datasets/{owner}/{slug}/unpacked'}

@pytest.mark.parametrize('layout', list(KAGGLE_LAYOUTS))
def test_data_found_in_kaggle_input_of_either_layout(layout, synthetic, tmp_path, monkeypatch):
    from scene_cls.platform import find_scene_data
    inp = tmp_path/'input'
    home = inp/KAGGLE_LAYOUTS[layout].format(owner='puneet6060', slug='intel-image-classification')
    home.parent.mkdir(parents=True); home.symlink_to(synthetic, target_is_directory=True)
    (inp/'datasets'/'someone'/'scene-cls-wheels').mkdir(parents=True)           # another dataset beside it
    (inp/'datasets'/'someone'/'back').symlink_to(inp, target_is_directory=True)  # and a link back up
    monkeypatch.setenv('SCENE_CLS_KAGGLE_INPUT', str(inp)); monkeypatch.delenv('SCENE_CLS_DATA', raising=False)
    assert find_scene_data(download=False) == home

def closed_port() -> int:
    "A loopback port nothing listens on: a proxy there refuses every connection, as a notebook with the internet off"
    from harness import free_port
    return free_port()

OFFLINE_REPORT = '''
import json, os, sys
from scene_cls.platform import env_report
from scene_cls.model import scene_model
res = []
for inp in sys.argv[1:]:      # one Kaggle input after another, the weights cache empty
    os.environ['SCENE_CLS_KAGGLE_INPUT'] = inp
    rep = env_report(timeout=3, arch='resnet18', weights='imagenet')
    try: model, _, _ = scene_model('resnet18', 6, 'imagenet'); loaded = float(model[0][0].weight.double().sum())
    except Exception as e: loaded = f'{type(e).__name__}: {e}'
    res.append(dict(weights=rep['weights'], loaded=loaded))
print(json.dumps(res))
'''

def test_weights_offline_from_an_attached_dataset(tmp_path):
    "The internet off (a proxy on a closed port), an empty cache: the attached file is found at any depth and used, or the report says what to attach"
    import torchvision, torch
    name = torchvision.models.get_model_weights('resnet18').DEFAULT.url.rsplit('/', 1)[-1]
    sd = torchvision.models.resnet18(weights=None).state_dict()
    cases = {None: tmp_path/'none'/'input', 'resnet18-weights': tmp_path/'years'/'input',
             'datasets/someone/resnet18-weights/pytorch/default/1': tmp_path/'2026'/'input'}
    for attached, inp in cases.items():
        inp.mkdir(parents=True)
        if attached: (inp/attached).mkdir(parents=True); torch.save(sd, inp/attached/name)
    proxy = f'http://127.0.0.1:{closed_port()}'
    env = {k: v for k, v in os.environ.items() if k.lower() not in ('no_proxy', 'http_proxy', 'https_proxy')}
    env.update(https_proxy=proxy, http_proxy=proxy, HTTPS_PROXY=proxy, HTTP_PROXY=proxy, TORCH_HOME=str(tmp_path/'torch'), MPLBACKEND='Agg')
    r = subprocess.run([sys.executable, '-c', OFFLINE_REPORT, *map(str, cases.values())], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for (attached, inp), res in zip(cases.items(), json.loads(r.stdout.strip().splitlines()[-1])):
        if attached:
            assert res['weights'] == f"resnet18 imagenet: {inp/attached/name} (attached dataset)", res
            assert res['loaded'] == pytest.approx(float(sd['conv1.weight'].double().sum())), res
        else:
            assert res['weights'].startswith(f'resnet18 imagenet: not reachable: https://download.pytorch.org/models/{name}'), res
            assert f'Attach a dataset holding {name}' in res['weights'], res
            assert 'WeightsError' in res['loaded'] and 'attach it to the notebook as a Kaggle dataset' in res['loaded'], res
    assert not (tmp_path/'torch'/'hub'/'checkpoints').exists() or not list((tmp_path/'torch'/'hub'/'checkpoints').iterdir())

RIGGED = '''
import json, os, sys, torch
def _touched(*a, **k): raise RuntimeError('CUDA was touched')
for k in ('is_available', 'device_count', '_lazy_init', 'init', 'get_arch_list'): setattr(torch.cuda, k, _touched)
from scene_cls.core import SceneError
from scene_cls.platform import check_gpus, env_report, torch_cuda_archs
res, path = {}, os.environ['PATH']
for b in sys.argv[1:]:        # a stand-in nvidia-smi in each folder
    os.environ['PATH'] = b + os.pathsep + path
    try: check_gpus(); check = 'passed'
    except SceneError as e: check = str(e)
    res[b] = dict(check=check, report=env_report(timeout=0))
print(json.dumps(dict(res=res, archs=torch_cuda_archs(), initialised=torch.cuda.is_initialized())))
'''

@pytest.fixture(scope='module')
def rigged(tmp_path_factory) -> dict:
    "`check_gpus` and `env_report` with every use of CUDA raising, under a stand-in nvidia-smi of Kaggle's GPUs: {'p100'|'t4x2': result}"
    tmp, gpus = tmp_path_factory.mktemp('rigged'), {'p100': [('Tesla P100-PCIE-16GB', '6.0')], 't4x2': [('Tesla T4', '7.5')]*2}
    for k, rows in gpus.items():
        (tmp/k).mkdir()
        (tmp/k/'nvidia-smi').write_text('#!/bin/sh\ncase "$*" in *compute_cap*) ' + ''.join(f'echo "{n}, {c}"; ' for n, c in rows) +
                                        ';; *) ' + ''.join(f'echo "{n}"; ' for n, c in rows) + ';; esac\n')
        (tmp/k/'nvidia-smi').chmod(0o755)
    r = subprocess.run([sys.executable, '-c', RIGGED, *(str(tmp/k) for k in gpus)], capture_output=True, text=True,
                       env={**os.environ, 'MPLBACKEND': 'Agg'}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out['archs'] is None: pytest.skip('this torch has no CUDA: nothing to compare the GPUs with')
    assert out['initialised'] is False           # nothing here touched CUDA
    return {k: dict(out['res'][str(tmp/k)], archs=out['archs']) for k in gpus}

def test_a_gpu_without_kernels_stops_before_the_launch(rigged):
    "Kaggle's P100 (compute capability 6.0) under a torch without sm_60 kernels: stopped by name, with what to choose; CUDA untouched"
    res = rigged['p100']
    if 'sm_60' in res['archs'] or any(a.startswith('compute_') and int(a[8:10]) <= 60 for a in res['archs']): pytest.skip('this torch runs on a P100')
    assert res['check'].startswith('GPU 0, Tesla P100-PCIE-16GB (compute capability 6.0), cannot run torch'), res['check']
    assert 'GPU T4 x2' in res['check'] and ' '.join(res['archs']) in res['check'], res['check']
    assert res['report']['gpu check'] == 'STOP: ' + res['check'] and res['report']['gpu capability'] == ['6.0']

def test_two_t4_pass_and_the_report_counts_the_launch(rigged):
    "Kaggle's T4 x2: the check passes; the notebook's process is one, the launch two, each with its share of the CPUs as workers"
    from scene_cls.data import default_workers
    res = rigged['t4x2']; rep = res['report']
    assert res['check'] == 'passed' and rep['gpu check'] == 'ok' and rep['gpus'] == ['Tesla T4']*2, res
    assert (rep['processes (this one)'], rep['processes (a launch)']) == (1, 2), rep
    assert rep['workers (a launch process)'] == default_workers('cuda', 2) == max(1, min(16, len(os.sched_getaffinity(0)))//2)
    assert rep['cuda in this process'] == 'not initialised'
