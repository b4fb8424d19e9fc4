"Augmentation throughput on the CPU: `scene_augs()` against fastai's `aug_transforms()`, side by side in one run."
import json, sys, time
from pathlib import Path
import torch
from fastai.vision.all import *
from scene_cls.augment import scene_augs
from scene_cls.data import make_synthetic_scenes, CLASSES

def batch(n=64, size=150):
    "n real Intel images when the sample is beside the repo, else synthetic scenes, as a float batch in [0, 1]"
    real = Path(__file__).resolve().parents[1].parent/'shared/data/intel-sample/train'
    files = sorted(real.rglob('*.jpg'))[::13][:n] if real.is_dir() else []
    if len(files) < n: files = sorted(make_synthetic_scenes(Path('/tmp/scene_cls_bench_syn'), n_train=11, n_valid=0, n_pred=0).rglob('*.jpg'))[:n]
    ims = [image2tensor(PILImage.create(f).resize((size, size))) for f in files]
    return TensorImage(torch.stack(ims).float()/255), 'real' if real.is_dir() else 'synthetic'

def throughput(tfms, x, n_iter=30, warmup=3):
    pipe = Pipeline(tfms, split_idx=0)
    for _ in range(warmup): pipe(x.clone())
    ts = []
    for _ in range(n_iter):
        t = time.perf_counter(); pipe(x.clone()); ts.append(time.perf_counter() - t)
    ts.sort()
    return len(x)/ts[len(ts)//2]

if __name__ == '__main__':
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    set_seed(0)
    x, src = batch()
    res = {}
    for round_ in range(2):   # interleaved, so that a slow moment of the machine hits both
        res.setdefault('scene_augs', []).append(throughput(scene_augs(), x))
        res.setdefault('fastai_aug_transforms', []).append(throughput(setup_aug_tfms(aug_transforms()), x))
    out = {k: round(max(v), 1) for k, v in res.items()}
    out.update(images=src, batch=list(x.shape), threads=torch.get_num_threads(), ratio=round(out['scene_augs']/out['fastai_aug_transforms'], 3))
    print(json.dumps(out))
    Path('bench/out').mkdir(parents=True, exist_ok=True); Path('bench/out/augment_throughput.json').write_text(json.dumps(out, indent=1))
