"""`scene-cls predict` against a plain PyTorch loop: same model, files and batch size, side by side in one run.

The plain loop decodes with torchvision, resizes to the model's size, normalizes and runs the model in inference
mode. Ours is the library's `predict_csv` (what `scene-cls predict` runs after loading the model): every file
checked and decoded, fastai's validation transforms, one CSV row per file. Peak memory is the process's max RSS.
"""
import json, resource, sys, time
from pathlib import Path
import torch, torchvision
from torchvision.io import decode_image, read_file, ImageReadMode
import torchvision.transforms.v2.functional as TF
from fastai.vision.all import set_seed
from scene_cls.data import make_synthetic_scenes, scene_dls, pred_files
from scene_cls.learner import scene_learner, export_learner, load_scene_learner
from scene_cls.predict import predict_csv

def rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024

def plain_loop(model, files, bs, size, stats):
    mean, std = [torch.tensor(s).view(1, 3, 1, 1) for s in stats]
    n = 0
    with torch.inference_mode():
        for i in range(0, len(files), bs):
            x = torch.stack([TF.resize(decode_image(read_file(str(f)), mode=ImageReadMode.RGB), [size, size], antialias=True)
                             for f in files[i:i+bs]]).float()/255
            n += len(model((x - mean)/std).argmax(1))
    return n

if __name__ == '__main__':
    arch = sys.argv[1] if len(sys.argv) > 1 else 'resnet50'
    n_files, bs, size = int(sys.argv[2]) if len(sys.argv) > 2 else 512, 64, 150
    syn = make_synthetic_scenes(Path('/tmp/scene_cls_bench_pred'), n_train=2, n_valid=1, n_pred=n_files, size=150)
    files = list(pred_files(syn))
    set_seed(0)
    learn = scene_learner(scene_dls(syn, size=size, bs=bs, check='off'), arch, weights=None)
    export_learner(learn, Path('bench/out/pred_model.pkl'))
    learn = load_scene_learner('bench/out/pred_model.pkl', cpu=True)
    model = learn.model.eval()
    plain_loop(model, files[:bs], bs, size, learn.stats); predict_csv(learn, files[:bs], 'bench/out/warm.csv', bs=bs, progress=False)
    res = {}
    for _ in range(2):   # interleaved, best of two each
        t = time.time(); plain_loop(model, files, bs, size, learn.stats); res.setdefault('plain', []).append(len(files)/(time.time() - t))
        t = time.time(); r = predict_csv(learn, files, 'bench/out/preds.csv', bs=bs, progress=False)
        res.setdefault('scene_cls', []).append(len(files)/(time.time() - t))
        assert r['files'] == len(files) and r['failed'] == 0
    out = dict(arch=arch, files=len(files), bs=bs, size=size, threads=torch.get_num_threads(),
               plain_images_per_s=round(max(res['plain']), 2), scene_cls_images_per_s=round(max(res['scene_cls']), 2),
               peak_rss_mb=round(rss_mb()))
    out['ratio'] = round(out['scene_cls_images_per_s']/out['plain_images_per_s'], 3)
    print(json.dumps(out))
    Path('bench/out/predict_throughput.json').write_text(json.dumps(out, indent=1))
