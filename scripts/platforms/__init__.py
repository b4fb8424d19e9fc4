"""The package sets of the platforms scene_cls's notebooks run on (Kaggle, Colab), as pip constraint files.

`scripts/platforms/<platform>.txt` holds, for every package of scene_cls's dependency closure that the platform has,
the version the platform has (`name==version`), and a header of `# key: value` lines: where the versions were read
(repository, file, commit, date), the platform's Python, and what scene_cls needs that the platform lacks. The files
are written by `python scripts/platforms/update.py` (its docstring says how they were made); read them here.
"""
from __future__ import annotations
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLATFORMS = ('kaggle', 'colab')
# The platforms' torch is a CUDA build that is not the one pip takes from the package index here (Colab: cu128 from
# PyTorch's own wheel index; the package index's torch 2.11.0 is a CUDA 13 build): its CUDA runtime packages are the
# torch wheel's business and are not constrained.
TORCH = ('torch', 'torchvision')
CUDA_RUNTIME = re.compile(r'^(nvidia-|cuda-|triton$)')

def canon(name:str) -> str:
    "A distribution name as pip compares them (PEP 503)"
    return re.sub(r'[-_.]+', '-', name).lower()

def path(platform:str) -> Path:
    "The constraint file of `platform` ('kaggle' or 'colab')"
    if platform not in PLATFORMS: raise ValueError(f'platform {platform!r}: one of {", ".join(PLATFORMS)}')
    return HERE/f'{platform}.txt'

def versions(platform:str) -> dict:
    "{canonical name: version} of `platform`'s packages in scene_cls's closure"
    res = {}
    for l in path(platform).read_text().splitlines():
        l = l.split('#')[0].strip()
        if l:
            n, v = l.split('==')
            res[canon(n)] = v.strip()
    return res

def info(platform:str) -> dict:
    "The header's `# key: value` lines of `platform`'s file (source, commit, date, python, missing, ...)"
    res = {}
    for l in path(platform).read_text().splitlines():
        m = re.match(r'#\s*([a-z][a-z-]*):\s*(.*)$', l)
        if m: res[m[1]] = m[2].strip()
        elif l.strip() and not l.startswith('#'): break
    return res

def python_version(platform:str) -> str:
    "The platform's Python, e.g. '3.13.15'"
    return info(platform)['python']

def constraints(platform:str, torch:str|None=None, drop=()) -> list:
    """`platform`'s `name==version` lines; `torch` given ('2.14.1,0.29.1'), torch and torchvision at those versions
    instead of the platform's; names in `drop` left out"""
    v = versions(platform)
    if torch:
        tv, vv = torch.split(',')
        v.update(torch=tv, torchvision=vv)
    drop = {canon(d) for d in drop}
    return [f'{n}=={ver}' for n, ver in sorted(v.items()) if n not in drop]
