"""Rehearse the Kaggle and Colab road on this CPU, as a GPU run would take it.

A fresh virtual environment per platform with that platform's packages at the platform's versions
(`scripts/platforms/<platform>.txt`: Colab's GPU runtime, Kaggle's image) but not scene_cls; the wheels that a Kaggle
dataset would hold (scene_cls and exactly what it needs beyond the platform's packages, resolved against them); the real sample
images beside the repository arranged as Kaggle mounts the data (`seg_train/seg_train`, `seg_test/seg_test`,
`seg_pred/seg_pred`); then `notebooks/10_intel_resnet50.ipynb` executed by papermill, as Kaggle runs a notebook,
with small parameters: not quick mode, but the real images, a CPU-sized backbone (EfficientNet-Lite0, whose
weights come with a PyPI package) and budget, and the same cells. On Kaggle it trains in two processes, through
the notebook's own launch cell (Accelerate's `debug_launcher`: two CPU processes, gloo, forked as
`notebook_launcher` forks them) and with the internet off (no package index, every download refused: `OFFLINE`);
on Colab in one, with the data "downloaded" by a stand-in kagglehub.

    python scripts/rehearse.py                          # both platforms, in /tmp/scene_cls_rehearsal
    python scripts/rehearse.py --platforms kaggle --work DIR
    python scripts/rehearse.py --wheels DIR             # only build the wheel folder to attach as a Kaggle dataset
    python scripts/rehearse.py --wheels DIR --platform colab
    python scripts/rehearse.py --prepare --work DIR     # only the environments (tests/test_kaggle.py: SCENE_CLS_REHEARSAL=DIR)

What differs from the platforms, on purpose: the Python is this one (3.11; Colab has 3.13, Kaggle 3.12), and torch
and torchvision are the platform's versions from the package index, CUDA builds of their own (Colab's are cu128
builds from PyTorch's index). SCENE_CLS_REHEARSAL_TORCH=disk takes 2.14.1/0.29.1 from this machine's disk instead
(no download; every other package stays the platform's), `X,Y` any other torch,torchvision pair.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, tomllib
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import platforms

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('SCENE_CLS_SHARED', REPO.parent/'shared'/'data'))
NOTEBOOK = REPO/'notebooks'/'10_intel_resnet50.ipynb'
# What runs the notebook here, as Kaggle runs one (Kaggle has both; Colab's kernel is its own, so papermill comes on top there).
RUNNER = ['papermill', 'ipykernel']
DISK_TORCH = '2.14.1,0.29.1'        # torch,torchvision: the releases on this machine's disk (pip takes them without a download)
# Kaggle with the internet off: no package index, and every HTTP(S) download (pip, urllib: torchvision's weights,
# requests, httpx: the Hugging Face hub) goes to a closed port on this machine and fails at once.
CLOSED = 'http://127.0.0.1:9'
OFFLINE = dict(PIP_NO_INDEX='1', PIP_CONFIG_FILE=os.devnull, HTTP_PROXY=CLOSED, HTTPS_PROXY=CLOSED, http_proxy=CLOSED,
               https_proxy=CLOSED, ALL_PROXY=CLOSED, all_proxy=CLOSED, NO_PROXY='', no_proxy='')
# the notebook's run settings (its `settings` parameter: RunConfig changes) and run folder, small enough for a CPU
SMALL = dict(arch='tf_efficientnet_lite0', weights='imagenet', sizes=[96], freeze_epochs=1, epochs=1, bs=32, lr_find_it=20,
             caption='CPU REHEARSAL: the 900-image sample, a small backbone and budget')
OUT = 'runs/intel_resnet50'
LR = dict(kaggle=None, colab=1e-2)    # Kaggle's run finds its learning rate with lr_find (inside the launch), Colab's is given

def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode: raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return r

def torch_pins(torch:str=None) -> str|None:
    """torch,torchvision versions to use instead of the platform's, or None for the platform's own: `torch`, else
    $SCENE_CLS_REHEARSAL_TORCH: 'platform' (the default), 'disk' (2.14.1,0.29.1, on this machine's disk) or 'X,Y'"""
    t = torch or os.environ.get('SCENE_CLS_REHEARSAL_TORCH') or 'platform'
    return None if t == 'platform' else DISK_TORCH if t == 'disk' else t

def notebook_extras() -> str:
    "The extras the notebook's install cell asks for (`SCENE_CLS_EXTRAS`), so that the wheels follow the notebook"
    src = next(''.join(c['source']) for c in json.loads(NOTEBOOK.read_text())['cells'] if 'install' in c.get('metadata', {}).get('tags', []))
    m = re.search(r"^SCENE_CLS_EXTRAS\s*=\s*['\"]([^'\"]*)['\"]", src, re.M)
    return m[1] if m else ''

def _requirement(r:str):
    try: from packaging.requirements import Requirement
    except ImportError: from pip._vendor.packaging.requirements import Requirement
    return Requirement(r)

def forced_upgrades(platform:str, extras:str) -> dict:
    """{name: (platform's version, scene_cls's requirement)} for the platform's packages that scene_cls's own
    requirements (with `extras`) do not accept: pip would change them on the platform. torch and torchvision never may."""
    proj = tomllib.loads((REPO/'pyproject.toml').read_text())['project']
    reqs = proj['dependencies'] + [r for e in filter(None, extras.split(',')) for r in proj['optional-dependencies'][e]]
    have, res = platforms.versions(platform), {}
    for r in map(_requirement, reqs):
        n = platforms.canon(r.name)
        if n in have and not r.specifier.contains(have[n], prereleases=True): res[n] = (have[n], str(r))
    bad = [n for n in res if n in platforms.TORCH]
    if bad: raise RuntimeError(f"scene_cls's requirements would replace {platform}'s {', '.join(bad)}: {res}")
    return res

def offline_set(wheel:Path, platform:str, extras:str=None) -> dict:
    """{name: version}: what scene_cls's wheel (with `extras`: the notebook's) needs beyond `platform`'s packages, as pip
    resolves it against them (the platform's versions as constraints, but for those scene_cls's own requirements force
    up: `forced_upgrades`). torch's CUDA runtime packages belong to the platform's torch and are left out. Resolved for
    this Python: a package that only another Python needs would be missing (none in scene_cls's closure now)."""
    extras = notebook_extras() if extras is None else extras
    forced = forced_upgrades(platform, extras)
    with tempfile.TemporaryDirectory() as d:
        c, rep = Path(d)/'constraints.txt', Path(d)/'report.json'
        c.write_text('\n'.join(platforms.constraints(platform, drop=forced)) + '\n')
        req = f"scene_cls{f'[{extras}]' if extras else ''} @ {wheel.resolve().as_uri()}"
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--ignore-installed', '--report', rep, '-c', c, req],
                           capture_output=True, text=True)
        if r.returncode:
            why = '\n'.join(l for l in (r.stdout + r.stderr).splitlines() if not l.startswith(('WARNING: Location', 'Collecting', '  Using', '  Downloading')))
            raise RuntimeError(f"{req} cannot be installed over {platform}'s packages ({platforms.path(platform).relative_to(REPO)}) "
                               f"changing no more of them than its own requirements replace ({forced or 'none'}); pip says:\n{why[-5000:]}")
        got = {platforms.canon(i['metadata']['name']): i['metadata']['version'] for i in json.loads(rep.read_text())['install']}
    have = platforms.versions(platform)
    return {n: v for n, v in sorted(got.items()) if n != 'scene-cls' and have.get(n) != v and not platforms.CUDA_RUNTIME.match(n)}

def build_wheels(dest:str|Path, platform:str='kaggle', extras:str=None) -> Path:
    """scene_cls's wheel and the wheels of what it needs beyond `platform`'s packages (`offline_set`) in `dest`: the
    folder to upload as a Kaggle dataset; the scene_cls wheel. `dest/wheels.json` says what is there and why."""
    dest = Path(dest); dest.mkdir(parents=True, exist_ok=True)
    for w in dest.glob('scene_cls-*.whl'): w.unlink()
    shutil.rmtree(REPO/'build', ignore_errors=True)            # setuptools builds in the tree: no stale module may ride along
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', dest, REPO])
    shutil.rmtree(REPO/'build', ignore_errors=True)
    whl = next(dest.glob('scene_cls-*.whl'))
    extras = notebook_extras() if extras is None else extras
    need = offline_set(whl, platform, extras)
    if need: run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', dest, *(f'{n}=={v}' for n, v in need.items())])
    binary = [w.name for w in dest.glob('*.whl') if not w.name.endswith('-none-any.whl')]
    (dest/'wheels.json').write_text(json.dumps(dict(
        platform=platform, constraints=str(platforms.path(platform).relative_to(REPO)), extras=extras, beyond_platform=need,
        upgrades_platform={n: dict(platform=o, scene_cls=r) for n, (o, r) in forced_upgrades(platform, extras).items()},
        built_for_python=f'{sys.version_info.major}.{sys.version_info.minor}', platform_python=platforms.python_version(platform),
        binary_wheels=binary), indent=1))
    return whl

def _installed(py:Path) -> dict:
    "{canonical name: version} installed in `py`'s environment (local versions cut: 2.11.0+cu130 is 2.11.0; a file or URL install: its URL)"
    res = {}
    for l in run([py, '-m', 'pip', 'freeze', '--all']).stdout.splitlines():
        if not l.strip() or l.startswith('#'): continue
        n, v = (l.split('==', 1) if '==' in l else l.split(' @ ', 1) if ' @ ' in l else (l, ''))
        res[platforms.canon(n.strip())] = v.strip() if '/' in v else v.strip().split('+')[0]
    return res

def platform_venv(work:Path, platform:str='kaggle', torch:str=None) -> Path:
    """A virtual environment with `platform`'s packages at its versions (`scripts/platforms/<platform>.txt`, torch as
    `torch_pins` says) and the notebook runner, not scene_cls; made once per set of versions and put back to exactly
    that set when reused; its python"""
    venv = work/f'venv-{platform}'; py = venv/'bin'/'python'; stamp = venv/'rehearsal.json'
    want = platforms.constraints(platform, torch=torch_pins(torch)) + RUNNER
    if stamp.exists() and json.loads(stamp.read_text())['want'] == want:   # reused: back to exactly the platform's packages
        was, now = json.loads(stamp.read_text())['installed'], _installed(py)
        extra = sorted(set(now) - set(was))
        if extra: run([py, '-m', 'pip', 'uninstall', '-y', '-q', *extra])
        changed = [f'{n}=={v}' for n, v in was.items() if now.get(n) != v and '/' not in v]
        if changed: run([py, '-m', 'pip', 'install', '-q', '--no-deps', *changed])
        return py
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, '-m', 'venv', venv])
    c = venv/'constraints.txt'; c.write_text('\n'.join(want[:-len(RUNNER)]) + '\n')
    run([py, '-m', 'pip', 'install', '-q', '-r', c, '-c', c, *RUNNER])
    stamp.write_text(json.dumps(dict(want=want, installed=_installed(py))))
    return py

def platform_changes(py:Path, platform:str, torch:str=None) -> dict:
    "{name: (platform's version, now)} for the platform's packages that are no longer at the platform's version in `py`'s environment"
    want = dict(l.split('==') for l in platforms.constraints(platform, torch=torch_pins(torch)))
    now = _installed(py)
    return {n: (v, now.get(n)) for n, v in want.items() if now.get(n) != v}

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

def _env(extra:dict, offline:bool=False) -> dict:
    "This process's environment less ours and the test runner's; `offline`: with no package index and downloads refused (`OFFLINE`)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(('SCENE_CLS_', 'KAGGLE_', 'COLAB_', 'PYTEST'))
           and k not in ('IN_TEST', 'PYTHONPATH', 'VIRTUAL_ENV', 'MPLBACKEND')}
    if offline: env = {k: v for k, v in env.items() if not k.startswith('PIP_') and not k.lower().endswith('_proxy')} | OFFLINE
    return {**env, 'PYTHONUNBUFFERED': '1', **extra}

def rehearse(platform:str, py:Path, work:Path, wheels:Path, sample:Path, unlabelled:Path, n_pred:int=48, processes:int=None,
             session:int=1, params:dict=None, offline:bool=None, package_set:str=None) -> dict:
    """Execute the notebook as `platform` ('kaggle' or 'colab') would, in a fresh working folder; what it made and how
    long it took. `offline` (default: on Kaggle): the notebook and the commands after it run with the internet off (`OFFLINE`).
    `package_set`: the platform whose packages `py`'s environment holds (default `platform`), for `changed`: the
    platform's packages that the notebook's install replaced (it should replace none)."""
    offline = platform == 'kaggle' if offline is None else offline
    wd = work/platform
    if session == 1: shutil.rmtree(wd, ignore_errors=True)    # a later session keeps the inputs (and a previous version's output)
    working = wd/('working' if session == 1 else f'working-session{session}')
    shutil.rmtree(working, ignore_errors=True); working.mkdir(parents=True)
    if platform == 'kaggle':
        inp = wd/'input'
        if session == 1:
            kaggle_layout(inp, sample, unlabelled, n_pred)
            shutil.copytree(wheels, inp/'scene-cls-wheels')      # a second dataset: the wheels
        env = _env(dict(KAGGLE_KERNEL_RUN_TYPE='Batch', SCENE_CLS_KAGGLE_INPUT=str(inp)), offline)
        processes = processes or 2                                # Kaggle's two T4s, rehearsed with two CPU processes
    elif platform == 'colab':
        src = kaggle_layout(wd/'download-source', sample, unlabelled, n_pred)
        stubs = wd/'stubs'
        (stubs/'kagglehub').mkdir(parents=True, exist_ok=True); (stubs/'kagglehub'/'__init__.py').write_text(STUB_KAGGLEHUB)
        (stubs/'google'/'colab').mkdir(parents=True, exist_ok=True); (stubs/'google'/'colab'/'userdata.py').write_text(STUB_USERDATA)
        (stubs/'google'/'__init__.py').write_text(''); (stubs/'google'/'colab'/'__init__.py').write_text('')
        for w in wheels.iterdir(): shutil.copy(w, working/w.name)   # uploaded beside the notebook
        env = _env(dict(COLAB_RELEASE_TAG='rehearsal', PYTHONPATH=str(stubs), REHEARSAL_DOWNLOAD_FROM=str(src),
                        REHEARSAL_DOWNLOAD_TO=str(wd/'kagglehub-cache'/'intel-image-classification'), REHEARSAL_DOWNLOAD_LOG=str(wd/'downloads.txt')), offline)
        processes = processes or 1
    else: raise ValueError(f'platform {platform!r}: kaggle or colab')
    params = dict(params or {})
    params = {'out': OUT, 'processes': processes, **params, 'settings': {**SMALL, 'lr': LR[platform], **params.get('settings', {})}}
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
    return dict(platform=platform, processes=processes, seconds=round(secs, 1), out=str(out), notebook=str(executed), text=text, offline=offline,
                package_set=package_set or platform, changed=platform_changes(py, package_set or platform),
                install_line=next((l for l in text.splitlines() if l.startswith('Running on')), ''), predict_line=p.stdout.strip(),
                downloads=(wd/'downloads.txt').read_text().split() if (wd/'downloads.txt').exists() else [], run=json.loads((out/'run.json').read_text()))

def main(argv=None):
    p = argparse.ArgumentParser(prog='python scripts/rehearse.py', description=__doc__.split('\n\n')[0])
    p.add_argument('--work', default='/tmp/scene_cls_rehearsal', help='folder for the environments, the wheels and the runs')
    p.add_argument('--platforms', default='kaggle,colab', help='the platforms to rehearse, each in its own package set')
    p.add_argument('--package-set', help="rehearse every platform in this platform's packages instead (kaggle or colab)")
    p.add_argument('--kaggle-internet', action='store_true', help='rehearse Kaggle with the internet on (default: off)')
    p.add_argument('--n-pred', type=int, default=48, help='unlabelled images in seg_pred')
    p.add_argument('--wheels', help='only build the wheel folder for a Kaggle dataset here, then stop')
    p.add_argument('--platform', default='kaggle', choices=platforms.PLATFORMS, help="--wheels: the platform whose packages the wheels complete")
    p.add_argument('--prepare', action='store_true', help='only make the environments in --work (for tests/test_kaggle.py with '
                   'SCENE_CLS_REHEARSAL=the same folder, e.g. in the background while other work runs), then stop')
    a = p.parse_args(argv)
    if a.wheels:
        whl = build_wheels(a.wheels, a.platform); info = json.loads((Path(a.wheels)/'wheels.json').read_text())
        print(f"Wheels for a Kaggle dataset in {a.wheels}: {whl.name} and what it needs beyond {a.platform}'s packages "
              f"({platforms.path(a.platform).relative_to(REPO)}): {' '.join(f'{n}=={v}' for n, v in info['beyond_platform'].items()) or 'nothing'}")
        for n, u in info['upgrades_platform'].items(): print(f"  NOTE: replaces {a.platform}'s {n}=={u['platform']} (scene_cls asks for {u['scene_cls']})")
        return
    if a.prepare:
        for pset in dict.fromkeys(a.package_set or pf for pf in a.platforms.split(',')):
            t = time.time(); py = platform_venv(Path(a.work), pset); print(f'{pset} environment {py.parent.parent} ({time.time() - t:.0f}s)', flush=True)
        return
    sample, unlabelled = SHARED/'intel-sample', SHARED/'intel-unlabelled'
    if not (sample/'train').is_dir(): sys.exit(f'the real sample images are not at {sample} (set SCENE_CLS_SHARED)')
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    for platform in a.platforms.split(','):
        pset = a.package_set or platform
        t = time.time(); py = platform_venv(work, pset); print(f'{pset} environment {py.parent.parent} ({time.time() - t:.0f}s)', flush=True)
        t = time.time(); wheels = work/f'wheels-{pset}'; shutil.rmtree(wheels, ignore_errors=True); build_wheels(wheels, pset)
        print(f'wheels {sorted(w.name for w in wheels.iterdir())} ({time.time() - t:.0f}s)', flush=True)
        res = rehearse(platform, py, work, wheels, sample, unlabelled, a.n_pred, offline=None if platform != 'kaggle' else not a.kaggle_internet,
                       package_set=pset)
        print(json.dumps({k: v for k, v in res.items() if k != 'text'}, indent=1), flush=True)

if __name__ == '__main__': main()
