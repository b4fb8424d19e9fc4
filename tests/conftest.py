"Shared fixtures: the CLI as a user runs it, synthetic scenes, and the real sample images beside the repo."
import os, subprocess, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
INTEL_SAMPLE = Path(os.environ.get('SCENE_CLS_SAMPLE', REPO.parent/'shared'/'data'/'intel-sample'))

def scene_cls_cmd():
    "The installed `scene-cls` console script (next to this Python), else the same entry point through -c"
    exe = Path(sys.executable).parent/'scene-cls'
    return [str(exe)] if exe.exists() else [sys.executable, '-c', 'import sys; from scene_cls.cli import main; sys.exit(main())']

def run_cli(*args, env=None, timeout=600, cwd=None):
    "Run `scene-cls ARGS` in a subprocess; return the CompletedProcess (text)"
    e = {**os.environ, 'PYTHONUNBUFFERED': '1', 'MPLBACKEND': 'Agg', **(env or {})}
    return subprocess.run(scene_cls_cmd() + [str(a) for a in args], capture_output=True, text=True, env=e, timeout=timeout, cwd=cwd)

@pytest.fixture(scope='session', autouse=True)
def image_stores(tmp_path_factory):
    "Image stores built by the tests (and the commands they run) go to a temporary folder, not the user's cache"
    d = tmp_path_factory.mktemp('stores'); old = os.environ.get('SCENE_CLS_CACHE')
    os.environ['SCENE_CLS_CACHE'] = str(d)
    yield d
    if old is None: del os.environ['SCENE_CLS_CACHE']
    else: os.environ['SCENE_CLS_CACHE'] = old

@pytest.fixture(scope='session')
def synthetic(tmp_path_factory):
    "A small synthetic dataset in the Kaggle layout"
    from scene_cls.synthetic import make_synthetic_scenes
    return make_synthetic_scenes(tmp_path_factory.mktemp('syn'), n_train=8, n_valid=4, n_pred=5, size=64)

@pytest.fixture(scope='session')
def intel_sample():
    if not (INTEL_SAMPLE/'train').is_dir():
        pytest.skip(f"real Intel sample images not found at {INTEL_SAMPLE} (set SCENE_CLS_SAMPLE to their folder)")
    return INTEL_SAMPLE

# a tiny, fast model for command-line runs: random weights, a fixed learning rate
TINY = ['--arch', 'resnet18', '--weights', 'none', '--size', 48, '--bs', 8]

def mixed_folder(synthetic, folder, n_good:int) -> dict:
    "`make_broken_images` in `folder`, `n_good` synthetic scenes and a text file beside them; the kinds of broken file"
    import shutil
    from scene_cls.synthetic import make_broken_images
    kinds = make_broken_images(folder)
    for f in sorted((synthetic/'seg_pred/seg_pred').iterdir())[:n_good]: shutil.copy(f, folder/f.name)
    (folder/'notes.txt').write_text('a file that is not an image at all')
    return kinds

@pytest.fixture(scope='session')
def exported(synthetic, tmp_path_factory):
    "A short train run on synthetic scenes (`TINY`), and its model exported to ONNX by `scene-cls export`: (run folder, export's result)"
    pytest.importorskip('onnxruntime', reason="the onnx extra is not installed (pip install 'scene_cls[onnx]')")
    out = tmp_path_factory.mktemp('onnx_run')/'run'
    r = run_cli('train', '--data', synthetic, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', out, '--k', 2)
    assert r.returncode == 0, r.stderr
    r = run_cli('export', out/'model.pkl', '--onnx', out/'scenes.onnx')
    assert r.returncode == 0, r.stderr
    return out, r
