"""The training stack every torch benchmark imports (`from bench.stack import *`), a plain decoder, and a benchmark
run in a fresh process (`child`)."""
from __future__ import annotations
import warnings
for c in (DeprecationWarning, FutureWarning): warnings.filterwarnings('ignore', category=c)   # the libraries' notices of change, on every run; any other warning is shown
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from PIL import Image
import torchvision.transforms.v2 as T, torchvision.transforms.v2.functional as TF
import fastai
from fastai.vision.all import *
from scene_cls.all import *   # every module, as a notebook imports it
from copy import deepcopy   # after fastai's star imports, which bring names of their own (copy, datetime)
import argparse, datetime, json, os, platform, resource, shutil, subprocess, sys, time
from bench.common import *   # where the data and the scratch folder are, a row of the table, real or synthetic files

def pil_batch(files, size:int) -> torch.Tensor:
    "A plain decode: PIL open, RGB, bilinear resize, uint8 tensor batch"
    return torch.stack([TF.pil_to_tensor(Image.open(f).convert('RGB').resize((size, size), Image.BILINEAR)) for f in files])

class BatchClock(Callback):
    "Time `n` training batches after `warmup` of them, then cancel the fit"
    order = 100
    def __init__(self, warmup:int, n:int): store_attr(); self.secs = None
    def before_fit(self): self.k = 0
    def after_batch(self):
        if not self.training: return
        self.k += 1
        if self.k == self.warmup: self.t0 = time.perf_counter()
        if self.k == self.warmup + self.n: self.secs = time.perf_counter() - self.t0; raise CancelFitException

def loader_rate(dl, n:int, bs:int) -> float:
    "images/s of `n` batches of `dl` after its first (workers started)"
    it = iter(dl); next(it)
    t = time.perf_counter()
    for _ in range(n): next(it)
    return rate(n*bs, time.perf_counter() - t)

def interleaved_best(fns:dict, # {name: a function that measures once and returns a rate (higher is better)}
                     reps:int, # rounds
                    ) -> dict:
    "Each of `fns` in turn, `reps` rounds (a slow moment of a shared machine hits every side alike); the best rate of each"
    res = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items(): res[k].append(f())
    return {k: max(v) for k, v in res.items()}

def child(*args) -> dict:
    "Run `python -m bench.run ARGS` (a child entry of `bench.run.main`) in a fresh process; the dict it printed last"
    out = subprocess.run([sys.executable, '-m', 'bench.run', *args], capture_output=True, text=True, cwd=REPO, env={**os.environ, 'SCENE_CLS_BENCH_TMP': str(TMP)})
    if out.returncode: raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])
