"""Write `scripts/platforms/<platform>.txt`: the platform's versions of every package in scene_cls's dependency closure.

    python scripts/platforms/update.py colab --freeze pip-freeze.gpu.txt --python 3.13.15 \\
        --source 'googlecolab/backend-info, pip-freeze.gpu.txt' --commit a72407924822 --date 2026-08-19
    python scripts/platforms/update.py kaggle --freeze colab-base-freeze.txt --overlay kaggle-resolved.txt --python 3.12.13 ...

`--freeze` is a `pip freeze` of the platform (for Colab, backend-info's file; for Kaggle, that of the Colab image its
Dockerfile starts FROM). `--overlay` is a list of `name==version` that replaces or adds to it: for Kaggle, what its
image build installs on top of that base (`uv pip install -r` of the Colab image's torch/tensorflow/jax pins and
`kaggle_requirements.txt`), resolved the way that build resolves it (see kaggle.txt's header for the command).

The closure: pip resolves (a dry run, this Python, nothing installed) the names of scene_cls's requirements, every extra
but `dev`, and what runs a notebook (ipykernel, papermill) and the tests where the platform has them (nbdev, pytest),
against the platform's versions as constraints; every resolved package that the platform has is written with the
platform's version; the ones it lacks are named in the header: `# missing:` what scene_cls brings (its requirements'
closure alone), `# missing-tools:` what only the runner and the tests need. torch's CUDA
runtime packages (nvidia-*, cuda-*, triton) are left out: they belong to the torch build (see `TORCH` in __init__).
"""
from __future__ import annotations
import argparse, json, re, subprocess, sys, tempfile, time, tomllib
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from platforms import canon, path, PLATFORMS, CUDA_RUNTIME

REPO = Path(__file__).resolve().parents[2]
RUNNER = ['ipykernel', 'papermill']        # what executes the notebook (papermill, as Kaggle runs a notebook)
DEV = ['nbdev', 'pytest']                  # what runs the tests: pinned where the platform has them

def read_freeze(f:Path) -> dict:
    "{canonical name: (name as written, version)} of a pip freeze; URL installs skipped, local versions (+cu128) cut"
    res = {}
    for l in Path(f).read_text().splitlines():
        l = l.split('#')[0].split(';')[0].strip()
        if '==' not in l or ' @ ' in l: continue
        n, v = (s.strip() for s in l.split('=='))
        res[canon(n)] = (n, v.split('+')[0])
    return res

def requirement_names() -> list:
    "The names of scene_cls's requirements, its extras' but `dev`'s included"
    proj = tomllib.loads((REPO/'pyproject.toml').read_text())['project']
    reqs = proj['dependencies'] + [r for k, rs in proj.get('optional-dependencies', {}).items() if k != 'dev' for r in rs]
    return sorted({canon(re.match(r'[A-Za-z0-9_.-]+', r)[0]) for r in reqs})

def closure(freeze:dict, names:list) -> dict:
    "{canonical name: version} that pip resolves for `names` with the platform's versions as constraints"
    with tempfile.TemporaryDirectory() as d:
        c = Path(d)/'c.txt'; rep = Path(d)/'report.json'
        c.write_text('\n'.join(f'{n}=={v}' for k, (n, v) in freeze.items() if not CUDA_RUNTIME.match(k)) + '\n')
        cmd = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--ignore-installed', '-q', '--report', rep, '-c', c, *names]
        r = subprocess.run([str(a) for a in cmd], capture_output=True, text=True)
        if r.returncode: sys.exit(f'pip could not resolve the closure:\n{r.stderr[-4000:]}')
        return {canon(i['metadata']['name']): i['metadata']['version'] for i in json.loads(rep.read_text())['install']}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('platform', choices=PLATFORMS)
    p.add_argument('--freeze', required=True, help="the platform's (or its base image's) pip freeze")
    p.add_argument('--overlay', help='name==version lines that replace or add to the freeze (what the platform installs on top)')
    p.add_argument('--python', required=True, help="the platform's Python version, e.g. 3.13.15")
    p.add_argument('--source', required=True, help='repository and file the versions come from')
    p.add_argument('--commit', required=True); p.add_argument('--date', required=True)
    p.add_argument('--note', action='append', default=[], help='a line for the header (repeatable)')
    p.add_argument('--out', help='where to write (default: scripts/platforms/PLATFORM.txt)')
    a = p.parse_args(argv)
    freeze = read_freeze(a.freeze)
    if a.overlay: freeze.update(read_freeze(a.overlay))
    lib, names = requirement_names(), requirement_names() + RUNNER + DEV
    got_lib, got = closure(freeze, lib), closure(freeze, names)
    have = {k: freeze[k] for k in sorted(got) if k in freeze and not CUDA_RUNTIME.match(k)}
    missing = sorted(k for k in got_lib if k not in freeze and not CUDA_RUNTIME.match(k))
    missing_tools = sorted(k for k in got if k not in freeze and k not in got_lib and not CUDA_RUNTIME.match(k))
    local = [l.strip() for l in Path(a.freeze).read_text().splitlines() if re.match(r'(torch|torchvision)==.*\+', l.strip())]
    head = [f"# {a.platform}'s packages in scene_cls's dependency closure, at the platform's versions: a pip constraint file.",
            f'# Written by scripts/platforms/update.py on {time.strftime("%Y-%m-%d")}; read with scripts/platforms/__init__.py.',
            f'# source: {a.source}', f'# commit: {a.commit}', f'# date: {a.date}', f'# python: {a.python}',
            *(f'# note: {n}' for n in a.note),
            *([f'# torch-build: {" ".join(local)} (the local version is cut below; the CUDA runtime packages are not listed)'] if local else []),
            f'# resolved-for: {" ".join(names)}',
            f'# missing: {" ".join(missing)}',
            f'# missing-tools: {" ".join(missing_tools)}']
    out = Path(a.out) if a.out else path(a.platform)
    out.write_text('\n'.join(head + [f'{n}=={v}' for n, v in have.values()]) + '\n')
    print(f'{out}: {len(have)} packages at the platform\'s versions; not on the platform: {" ".join(missing)} '
          f'(and for the notebook runner and the tests: {" ".join(missing_tools)})')

if __name__ == '__main__': main()
