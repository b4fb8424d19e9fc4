"""Peak memory and time of an interpretation report and of a prediction run, at two sizes, each in a fresh process.

The issue asks for a report over 3,000 images on the CPU; running 4x as many shows whether memory grows with the
number of images. Each case also runs with `free_memory` switched off (`FreeMemory` and the per-chunk call in
`predict_rows` made no-ops), which is how the library behaved before it had them. Synthetic images, ResNet18 with
random weights at 150 px, batch 64: the model's accuracy does not matter here, its memory and time do.

    python bench/memory_growth.py            # about 6 minutes on 2 cores
"""
import json, resource, subprocess, sys, time
from pathlib import Path

def rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024

def child(kind, n, free):
    from fastai.vision.all import set_seed, Callback
    from scene_cls.data import make_synthetic_scenes, scene_dls, pred_files
    from scene_cls.learner import scene_learner
    import scene_cls.interpret as I, scene_cls.predict as P
    if not free:
        class NoFree(Callback): pass
        I.FreeMemory = lambda *a, **k: NoFree(); P.free_memory = lambda: None
    syn = make_synthetic_scenes(Path('/tmp/scene_cls_bench_memory'), n_train=4, n_valid=500, n_pred=512, size=150)
    set_seed(0)
    learn = scene_learner(scene_dls(syn, size=150, bs=64, check='off'), 'resnet18', weights=None)
    learn.model.eval()
    base = rss_mb(); t = time.time()
    if kind == 'report':
        items = list(learn.dls.valid.items)*(n//3000)          # the 3,000 validation images, repeated
        rep = I.scene_report(learn, Path(f'/tmp/scene_cls_bench_memory_report_{n}'), dl=learn.dls.test_dl(items, with_labels=True), k=9)
        assert rep.metrics['n'] == n
    else:
        files = list(pred_files(syn))*(n//512)
        r = P.predict_csv(learn, files, '/tmp/scene_cls_bench_memory_preds.csv', bs=64, progress=False)
        assert r['files'] == n and r['failed'] == 0
    secs = time.time() - t
    return dict(kind=kind, images=n, free_memory=free, seconds=round(secs, 1), images_per_s=round(n/secs, 1),
                rss_before_mb=round(base), peak_rss_mb=round(rss_mb()), growth_mb=round(rss_mb() - base))

if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1'))); sys.exit()
    kinds = sys.argv[1:] or ['report', 'predict']     # e.g. `python bench/memory_growth.py predict`
    res = []
    for kind, sizes in (('report', (3000, 12000)), ('predict', (512, 4096))):
        if kind not in kinds: continue
        for free in (1, 0):
            for n in sizes:
                out = subprocess.run([sys.executable, __file__, '--child', kind, str(n), str(free)], capture_output=True, text=True)
                if out.returncode: sys.exit(out.stderr[-3000:])
                res.append(json.loads(out.stdout.strip().splitlines()[-1])); print(json.dumps(res[-1]), flush=True)
    Path('bench/out').mkdir(parents=True, exist_ok=True)
    Path(f"bench/out/memory_growth_{'_'.join(kinds)}.json").write_text(json.dumps(res, indent=1))
