# Install scene_cls, once: nothing when it is importable; else a scene_cls wheel found in Kaggle's input (any folder
# depth: /kaggle/input/<slug>/, 2026's /kaggle/input/datasets/<owner>/<slug>/, or deeper) or beside this notebook,
# with the wheels next to it (the offline way: Kaggle with internet off); else the repository at the tag of the
# version this notebook was written for.
SCENE_CLS_VERSION = '0.1.0'      # the release of scene_cls this notebook goes with (tag v0.1.0)
SCENE_CLS_EXTRAS = 'lite0,kaggle'  # EfficientNet-Lite0 weights (quick mode, CPU runs) and kagglehub (Colab)
import collections, fnmatch, os, subprocess, sys
from pathlib import Path
platform_name = ('Kaggle' if os.environ.get('KAGGLE_KERNEL_RUN_TYPE') else
                 'Colab' if 'COLAB_RELEASE_TAG' in os.environ else 'local')

def _pip(*args):
    return subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', *args],
                          capture_output=True, text=True)

def find_wheels(roots, pattern='scene_cls-*.whl', max_dirs=5000):
    ("Files named like `pattern` under each (folder, depth) of `roots`, breadth first; links followed, "
     "each folder read once")
    found, seen, todo = [], set(), collections.deque((Path(r), 0, d) for r, d in roots)
    while todo and len(seen) < max_dirs:
        folder, depth, most = todo.popleft()
        if os.path.realpath(folder) in seen: continue       # a second way into a folder (a link, maybe to a parent)
        seen.add(os.path.realpath(folder))
        try:
            with os.scandir(folder) as it: entries = sorted(it, key=lambda e: e.name)
        except OSError: continue
        for e in entries:
            try:
                if fnmatch.fnmatch(e.name, pattern) and e.is_file(): found.append(Path(e.path))
                elif depth < most and not e.name.startswith('.') and e.is_dir():
                    todo.append((Path(e.path), depth + 1, most))
            except OSError: pass
    return found

def install_scene_cls() -> str:
    "Make `import scene_cls` work; say what was installed and from where"
    try:
        import scene_cls
        return f'scene_cls {scene_cls.__version__} is installed already ({Path(scene_cls.__file__).parent})'
    except ImportError: pass
    wheels = find_wheels([(os.environ.get('SCENE_CLS_KAGGLE_INPUT', '/kaggle/input'), 7), (Path.cwd(), 2)])
    if wheels:
        # this notebook's version first
        whl = max(wheels, key=lambda w: (w.name.split('-')[1] == SCENE_CLS_VERSION, w.name))
        req = f'scene_cls[{SCENE_CLS_EXTRAS}] @ {whl.as_uri()}'
        r = _pip('--no-index', '--find-links', str(whl.parent), req)   # offline: only the wheels beside it
        how = f'the wheel {whl} (offline, with the wheels beside it)'
        if r.returncode:                                               # some dependency is not there: the package index
            r = _pip('--find-links', str(whl.parent), req)
            how = f'the wheel {whl}, its missing dependencies from the package index'
    else:
        req = f'scene_cls[{SCENE_CLS_EXTRAS}] @ git+https://github.com/scene-cls/scene_cls@v{SCENE_CLS_VERSION}'
        r, how = _pip(req), f'the repository at tag v{SCENE_CLS_VERSION}'
    if r.returncode:
        raise RuntimeError(f'Could not install scene_cls from {how}. On Kaggle, switch Internet on, or attach a '
                           f'dataset with the wheels (see the README: "Kaggle with internet off"). '
                           f'pip said:\n{r.stderr[-3000:]}')
    import importlib; importlib.invalidate_caches()
    import scene_cls
    return f'installed scene_cls {scene_cls.__version__} from {how}'

print(f'Running on {platform_name}. {install_scene_cls()}')
