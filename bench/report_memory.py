"An interpretation report over 3,000 (synthetic) images on the CPU: wall time and peak memory."
import json, resource, sys, time
from pathlib import Path
import torch
from fastai.vision.all import set_seed
from scene_cls.data import make_synthetic_scenes, scene_dls
from scene_cls.learner import scene_learner
from scene_cls.interpret import scene_report

def rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024

if __name__ == '__main__':
    n_per_class = int(sys.argv[1]) if len(sys.argv) > 1 else 500            # 6 x 500 = 3,000 validation images
    syn = make_synthetic_scenes(Path('/tmp/scene_cls_bench_report'), n_train=4, n_valid=n_per_class, n_pred=0, size=150)
    set_seed(0)
    learn = scene_learner(scene_dls(syn, size=150, bs=64, check='off'), 'resnet18', weights=None)
    learn.model.eval()
    base = rss_mb(); t = time.time()
    rep = scene_report(learn, Path('bench/out/report_3000'), k=9)
    secs, peak = time.time() - t, rss_mb()
    out = dict(images=rep.metrics['n'], seconds=round(secs, 1), images_per_s=round(rep.metrics['n']/secs, 1),
               peak_rss_mb=round(peak), rss_before_report_mb=round(base), growth_mb=round(peak - base), arch='resnet18', size=150)
    print(json.dumps(out))
    Path('bench/out/report_memory.json').write_text(json.dumps(out, indent=1))
