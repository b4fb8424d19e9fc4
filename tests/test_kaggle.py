"""The Kaggle/Colab road, rehearsed on the CPU as a GPU run would take it.

- the tripwire: `10_intel_resnet50`'s cells up to its launch run with two GPUs named by `nvidia-smi`,
  `torch.cuda.is_available()` True and any CUDA initialisation raising: nothing before the launch may touch CUDA;
- the rehearsal (`scripts/rehearse.py`): a fresh environment without scene_cls, the wheels as a Kaggle dataset, the
  real sample in Kaggle's layout, the notebook run by papermill with small parameters: on Kaggle in two processes
  through the notebook's own launch cell, on Colab with the data downloaded by a stand-in kagglehub.
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

TRIPWIRE = '''
import torch
def _cuda_touched(*a, **k): raise RuntimeError("CUDA was initialised before the launch")
torch.cuda.is_available = lambda: True          # as on a GPU machine
torch.cuda._lazy_init = torch.cuda.init = _cuda_touched
import accelerate
def _notebook_launcher(fn, args=(), num_processes=None, **kw):
    assert not torch.cuda.is_initialized()
    print(f"LAUNCH notebook_launcher num_processes={num_processes}")
accelerate.notebook_launcher = _notebook_launcher
'''

def script_up_to_launch(nb:Path, params:dict) -> str:
    "The notebook's code up to and including its launch cell, with `params` after its parameters cell, as one script"
    parts = [TRIPWIRE]
    for c in cells(nb):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        parts.append('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('!', '%'))))
        tags = c.get('metadata', {}).get('tags', [])
        if 'parameters' in tags: parts.append('\n'.join(f'{k} = {v!r}' for k, v in params.items()))
        if 'launch' in tags: return '\n\n'.join(parts)
    raise AssertionError(f'{nb} has no cell tagged launch')

def test_nothing_touches_cuda_before_the_launch(synthetic, tmp_path):
    bin_ = tmp_path/'bin'; bin_.mkdir()
    (bin_/'nvidia-smi').write_text('#!/bin/sh\necho "Tesla T4"\necho "Tesla T4"\n'); (bin_/'nvidia-smi').chmod(0o755)
    script = tmp_path/'up_to_launch.py'
    script.write_text(script_up_to_launch(NB10, dict(data=str(synthetic), out=str(tmp_path/'run'), quick=False, arch='resnet18', weights='none', bs=8)))
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'SCENE_CLS_QUICK')}
    env.update(PATH=f"{bin_}:{env['PATH']}", MPLBACKEND='Agg', KAGGLE_KERNEL_RUN_TYPE='Interactive')
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    assert 'Tesla T4, Tesla T4' in r.stdout or "['Tesla T4', 'Tesla T4']" in r.stdout, r.stdout
    assert 'LAUNCH notebook_launcher num_processes=2' in r.stdout, r.stdout     # the two-GPU path, reached with CUDA untouched
    assert (tmp_path/'run'/'aug_preview.png').is_file()                          # what it showed before, drawn on the CPU

def test_the_tripwire_trips(tmp_path):
    "The tripwire catches what it should: fastai's default device initialises CUDA"
    script = tmp_path/'touch.py'
    script.write_text(TRIPWIRE + '\nfrom fastai.vision.all import default_device\ndefault_device()\n')
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'CUDA was initialised before the launch' in r.stderr, r.stderr[-2000:]

@pytest.fixture(scope='module')
def rehearsal(intel_sample, tmp_path_factory):
    sys.path.insert(0, str(REPO/'scripts'))
    import rehearse
    unlabelled = INTEL_SAMPLE.parent/'intel-unlabelled'
    if not unlabelled.is_dir(): pytest.skip(f'unlabelled images not found at {unlabelled}')
    keep = os.environ.get('SCENE_CLS_REHEARSAL')     # a folder to keep the environment in between runs (6 GB: torch)
    work = Path(keep or tmp_path_factory.mktemp('rehearsal'))
    py = rehearse.platform_venv(work)
    wheels = work/'wheels'
    shutil.rmtree(wheels, ignore_errors=True)
    rehearse.build_wheels(wheels)
    yield rehearse, py, work, wheels, unlabelled
    if not keep: shutil.rmtree(work, ignore_errors=True)

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
    rehearse, py, work, wheels, unlabelled = rehearsal
    res = rehearse.rehearse('kaggle', py, work, wheels, intel_sample, unlabelled, n_pred=24)
    assert 'Running on Kaggle. installed scene_cls' in res['install_line'] and '(offline' in res['install_line'], res['install_line']
    check_run(res, 24, 2)
    # the next Kaggle session: this version's output attached as an input, `resume_from` pointing into it
    prev = work/'kaggle'/'input'/'intel-scenes-output'/'runs'/'intel_resnet50'
    shutil.copytree(res['out'], prev)
    again = rehearse.rehearse('kaggle', py, work, wheels, intel_sample, unlabelled, n_pred=24, session=2, params=dict(resume_from=str(prev)))
    assert 'FINISHED run' in again['text'] and 'NOT training again' in again['text'] and 'rehearsing the launch' not in again['text']
    assert pd.read_csv(Path(again['out'])/'log.csv').equals(pd.read_csv(Path(res['out'])/'log.csv'))
    assert again['run'] == res['run'] and len(pd.read_csv(Path(again['out'])/'predictions.csv')) == 24
    assert not [o for c in json.loads(Path(again['notebook']).read_text())['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']

def test_colab_rehearsal_kagglehub_without_login(rehearsal, intel_sample):
    rehearse, py, work, wheels, unlabelled = rehearsal
    rehearse.platform_venv(work)     # scene_cls out of the environment again
    res = rehearse.rehearse('colab', py, work, wheels, intel_sample, unlabelled, n_pred=24, params=dict(self_training=True, threshold=0.5))
    assert 'Running on Colab. installed scene_cls' in res['install_line'], res['install_line']
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
_SHALLOW = pytest.mark.xfail(strict=True, reason="the notebooks' install cell looks two folders deep: paste tests/install_cell.py into notebooks 10 and 11")

@pytest.mark.parametrize('cell,where', [('tests/install_cell.py', w) for w in LAYOUTS] + [('notebook 10', LAYOUTS[0])] +
                         [pytest.param('notebook 10', w, marks=_SHALLOW) for w in LAYOUTS[1:]])
def test_install_cell_finds_the_wheel_offline_in_both_input_layouts(cell, where, tmp_path):
    "Kaggle's input of years (/kaggle/input/<slug>/) and of 2026 (/kaggle/input/datasets/<owner>/<slug>/), a folder deeper too"
    import scene_cls
    src = INSTALL_CELL.read_text().replace("'0.1.0'", repr(scene_cls.__version__)) if cell.startswith('tests') else tagged(NB10, 'install')
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

@pytest.mark.xfail(strict=True, reason='until tests/install_cell.py is pasted into notebooks 10 and 11 (then remove this mark)')
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
