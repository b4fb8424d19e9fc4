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

# The two tiers. Slow: whatever trains a model, builds an environment, drives a browser or a server under load, or
# runs an experiment notebook whole. Fast (`pytest -m "not slow"`, run with the library notebooks' `nbdev-test`):
# the rest, a few minutes on 2 cores. CI runs both. Named here, in one place, so that the split is read at a glance.
SLOW_MODULES = {'test_app', 'test_bench', 'test_clean', 'test_distributed', 'test_light', 'test_onnx', 'test_real_images',
                'test_resume', 'test_serve'}
SLOW_TESTS = {'test_train_writes_the_run_folder', 'test_the_image_store_trains_the_same_model', 'test_self_training_teacher_pseudo_labels_student',
              'test_predict_and_interpret_with_the_exported_model', 'test_predict_accounts_for_every_file',
              'test_predict_reads_unusual_but_valid_inputs_faithfully', 'test_help_and_advice_read_right_on_the_command_line',
              'test_check_and_training_on_broken_data', 'test_user_errors_are_one_clear_line', 'test_no_data_falls_back_to_synthetic_and_says_so',
              'test_interpret_draws_its_bar_unless_told_not_to', 'test_export_then_load_in_a_fresh_process', 'test_resume_after_a_killed_run',
              'test_a_cpu_run_repeats_exactly', 'test_the_notebook_never_touches_cuda', 'test_further_never_touches_cuda',
              'test_kaggle_rehearsal_two_processes_offline_wheel', 'test_colab_rehearsal_kagglehub_without_login',
              'test_rebuilt_from_the_kaggle_layout_byte_for_byte'}

# The long tier: what takes minutes each and would push CI past its 30 minutes on 2 cores. The platform rehearsals
# build a fresh environment of Colab's or Kaggle's own package set from the package registries (20-40 minutes); the
# quick bench runs every bench group (5 minutes); the real-image accuracy run trains Lite0 for 5 epochs at 224 px
# (5 minutes). They run when asked for, `pytest -m long` (the rehearsals alone: `pytest -m platform`, or
# `python scripts/rehearse.py`), and are skipped, saying so, otherwise.
PLATFORM_TESTS = {'test_kaggle_rehearsal_two_processes_offline_wheel', 'test_colab_rehearsal_kagglehub_without_login'}
LONG_TESTS = PLATFORM_TESTS | {'test_quick_bench_writes_results_of_the_documented_shape', 'test_lite0_recipe_reaches_85_percent_on_real_images'}

def pytest_collection_modifyitems(config, items):
    asked = config.option.markexpr or ''
    for it in items:
        if it.module.__name__.split('.')[-1] in SLOW_MODULES or it.originalname in SLOW_TESTS: it.add_marker(pytest.mark.slow)
        if it.originalname in PLATFORM_TESTS: it.add_marker(pytest.mark.platform)
        if it.originalname in LONG_TESTS:
            it.add_marker(pytest.mark.long)
            if not ('long' in asked or (it.originalname in PLATFORM_TESTS and 'platform' in asked)):
                it.add_marker(pytest.mark.skip(reason='the long tier (minutes each; tests/conftest.py): pytest -m long'))

_tier_seconds = {'fast': 0.0, 'slow': 0.0}

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import time
    t = time.perf_counter(); yield
    _tier_seconds['slow' if item.get_closest_marker('slow') else 'fast'] += time.perf_counter() - t

def pytest_terminal_summary(terminalreporter):
    "The time of each tier in this run (setup, call and teardown of its tests), so that CI prints both"
    terminalreporter.write_line(f"tiers: fast (-m 'not slow') {_tier_seconds['fast']:.0f}s, slow {_tier_seconds['slow']:.0f}s of tests")
