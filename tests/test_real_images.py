"Integration on genuine Intel Image Classification images (../shared/data/intel-sample: 150 train + 50 valid per class)."
import json
from pathlib import Path
import pytest
from conftest import run_cli
from scene_cls.data import scene_dls, check_images, CLASSES

def test_dataloaders_on_the_real_images(intel_sample):
    dls = scene_dls(intel_sample, size=150, bs=32)
    assert dls.vocab == CLASSES
    assert (len(dls.train_ds), len(dls.valid_ds)) == (900, 300)
    for ds, n in ((dls.train_ds, 150), (dls.valid_ds, 50)):
        labels = [ds.vocab[y] for _, y in ds]
        assert labels == [Path(p).parent.name for p in ds.items]
        assert {c: labels.count(c) for c in CLASSES} == {c: n for c in CLASSES}
    xb, yb = dls.one_batch()
    assert tuple(xb.shape) == (32, 3, 150, 150)

def test_the_real_sample_has_no_fatal_problem(intel_sample):
    rep = check_images(intel_sample)
    assert not rep.fatal.any(), rep[rep.fatal].to_string()

# The recipe, with the stated budget: EfficientNet-Lite0 with its real ImageNet weights (no network needed),
# 224 px, batch 32: 2 frozen epochs at lr 1e-2 (the linear head on the pretrained features), then 3 unfrozen epochs
# with discriminative rates up to 1e-3 and batchnorm kept as pretrained (--freeze-bn). With batchnorm training (fastai's
# default in unfrozen groups) the unfrozen epochs lost 4 to 15 points on these 900 images at bs 32; kept frozen, they
# gain on intel-extra over the earlier 5-frozen-epoch recipe: 89.8% against 88.7% (mean of seeds 42, 0, 1; the
# `levers` rows of bench/results.md). The README's main job trains 8 unfrozen epochs (91.2%, 7.4 minutes); CI runs
# this 3-epoch version of it, the same code path in 3 minutes. The seeded CPU run repeats exactly.
RECIPE = ['--arch', 'tf_efficientnet_lite0', '--weights', 'imagenet', '--size', 224, '--freeze-epochs', 2, '--epochs', 3,
          '--lr', 1e-2, '--unfrozen-lr', 1e-3, '--freeze-bn', '--bs', 32, '--seed', 42, '--k', 9]

def test_lite0_recipe_reaches_85_percent_on_real_images(intel_sample, tmp_path):
    out = tmp_path/'run'
    r = run_cli('train', '--data', intel_sample, *RECIPE, '--out', out, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((out/'run.json').read_text())
    m = json.loads((out/'report/metrics.json').read_text())
    print(f"lite0 recipe: accuracy {run['accuracy']:.4f}, training {run['train_seconds']}s")
    assert m['n'] == 300
    assert run['accuracy'] >= 0.85, run
    assert (out/'report/gradcam.png').stat().st_size > 20_000
