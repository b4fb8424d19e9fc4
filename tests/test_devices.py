"""Every place that runs a model outside `fit`, on a stand-in GPU (`harness.fake_cuda`): the DataLoaders put their
batches "on CUDA", and an operation that meets a model left on the CPU raises `DeviceMix`, as a real GPU would.
Features (`clean`), predictions and TTA, the report with Grad-CAM, the web demo's overlay, lr_find, the ONNX export,
a model loaded for the GPU (the self-training teacher)."""
import warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from harness.fake_cuda import fake_cuda, claimed, DeviceMix, CUDA
from scene_cls.config import RunConfig
from scene_cls.data import scene_dls, pred_files
from scene_cls.learner import scene_learner, export_scene_learner, load_scene_learner, scene_lr_find, LearnerModel, labelled_dl

@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=".*pin_memory.*")   # no accelerator really there to pin for
        yield

ARCH = 'test_resnet'   # timm's ResNet for tests: 0.5M parameters, batchnorm and all

def gpu_learner(data, arch=ARCH, size=48):
    "A fresh learner whose DataLoaders send their batches to the (stand-in) GPU, as `scene_dls` does on a GPU machine"
    dls = scene_dls(data, size=size, bs=8, device=CUDA, num_workers=0, cache=False)
    return scene_learner(dls, arch, None)

@pytest.fixture(scope='module')
def exported(synthetic, tmp_path_factory):
    "A model trained and exported on the CPU: (model.pkl, the learner)"
    learn = scene_learner(scene_dls(synthetic, size=48, bs=8, device='cpu', cache=False), ARCH, None)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    return export_scene_learner(learn, tmp_path_factory.mktemp('exported')/'model.pkl'), learn

def test_the_stand_in_catches_a_device_mix():
    "The double fails where a GPU fails: a model on the CPU meeting a batch on CUDA; moved, it computes the CPU's numbers"
    with fake_cuda() as mode:
        lin = torch.nn.Linear(3, 2); x = torch.randn(4, 3); want = lin(x)   # made inside: they claim the CPU
        assert claimed(lin.weight) == claimed(x) == 'cpu'
        xc = x.to('cuda')
        assert claimed(xc) == 'cuda:0' and xc.device == CUDA and xc.is_cuda and torch.cuda.is_available()
        with pytest.raises(DeviceMix, match='cpu and cuda:0'): lin(xc)
        lin.to('cuda'); got = lin(xc)
        assert claimed(got) == 'cuda:0'
        with pytest.raises(TypeError, match='numpy'): got.numpy()
        assert torch.equal(got.cpu(), want) and claimed(got.cpu()) == 'cpu'
    assert not torch.cuda.is_available() or torch.cuda.device_count() >= 1   # put back as it was

def test_features_for_cleaning_run_where_the_batches_are(synthetic):
    "`clean.scene_features` on a fresh learner (whose model fastai has not moved: no `fit` yet) and batches on the GPU"
    from scene_cls.clean import scene_features
    items = sorted(pred_files(synthetic/'seg_test'))[:10]
    torch.manual_seed(0)
    cpu = scene_features(scene_learner(scene_dls(synthetic, size=48, bs=8, device='cpu', cache=False), ARCH, None), items, 8)
    with fake_cuda():
        torch.manual_seed(0)
        learn = gpu_learner(synthetic)
        feats = scene_features(learn, items, 8)
        assert claimed(next(learn.model.parameters())) == 'cuda:0'
    assert feats.shape == cpu.shape and len(feats) == 10
    np.testing.assert_allclose(feats, cpu, atol=1e-5)          # the same numbers as on the CPU

def test_clean_command_on_the_gpu(synthetic, tmp_path):
    "What `scene-cls clean` runs: a fresh learner's features over the training split"
    from scene_cls.clean import clean_scene_data
    with fake_cuda():
        issues = clean_scene_data(synthetic, tmp_path/'c', cfg=RunConfig(arch=ARCH, weights='none', sizes=(48,), bs=8), k=2)
    assert len(issues) == 48 and (tmp_path/'c'/'suspects.csv').is_file()

def test_predictions_tta_and_report_with_gradcam(synthetic, tmp_path):
    "fastai's `get_preds` and `tta` move the model themselves; the report's Grad-CAM and the demo's overlay run after them or alone"
    from scene_cls.interpret import scene_report, gradcam_grid, scene_preds, scene_top_losses
    from scene_cls.app import gradcam_overlay
    from scene_cls.core import read_rgb
    files = sorted(pred_files(synthetic/'seg_test'))[:6]
    with fake_cuda() as mode:
        top = scene_top_losses(scene_preds(gpu_learner(synthetic), files, bs=8)[0], 3)
        fresh = gpu_learner(synthetic)                                   # Grad-CAM first, before any prediction
        plt_fig = gradcam_grid(fresh, top, tmp_path/'gc.png')
        assert claimed(next(fresh.model.parameters())) == 'cuda:0'
        over = gradcam_overlay(gpu_learner(synthetic), read_rgb(files[0]), 'forest')
        assert over.shape == (48, 48, 3) and over.dtype == np.uint8
        m = LearnerModel(gpu_learner(synthetic))
        rows = list(m.file_probs(files, bs=4, tta=True))
        assert [f for f, e, p in rows] == files and all(p is not None and abs(p.sum() - 1) < 1e-4 for _, _, p in rows)
        items, probs, targs, losses = m.labelled_preds(files, bs=4)
        assert probs.shape == (6, 6) and len(losses) == 6
        rep = scene_report(gpu_learner(synthetic), tmp_path/'report', dl=files, k=3, bs=4)
        assert (tmp_path/'report'/'gradcam.png').stat().st_size > 0 and rep.metrics['n'] == 6
        assert mode.mixes == []
    import matplotlib.pyplot as plt; plt.close('all')

def test_lr_find_on_the_gpu(synthetic, tmp_path):
    with fake_cuda() as mode:
        learn = gpu_learner(synthetic, size=32)
        res = scene_lr_find(learn, num_it=10, show_plot=False)     # fit on the batches' device, a save and a load of the model
        assert 0 < res['valley'] < 10
        assert claimed(next(learn.model.parameters())) == 'cuda:0' and mode.mixes == []

def test_onnx_export_of_a_model_on_the_gpu(exported, tmp_path, monkeypatch):
    "`export_onnx` copies the model to the CPU for the exporter and its check; the learner's own model stays on the GPU"
    pytest.importorskip('onnxruntime')
    from scene_cls.deploy import export_onnx
    pkl, _ = exported
    with fake_cuda() as mode:
        export = torch.onnx.export
        def paused_export(*a, **k):   # the exporter's decompositions ask the real driver: plain torch for them (a CPU model)
            assert all(claimed(p) == 'cpu' for p in a[0].parameters())
            with mode.paused(): return export(*a, **k)
        monkeypatch.setattr(torch.onnx, 'export', paused_export)
        learn = load_scene_learner(pkl, cpu=False)
        assert claimed(next(learn.model.parameters())) == 'cuda:0' and learn.dls.device == CUDA
        res = export_onnx(learn, tmp_path/'m.onnx', n_check=4)
        assert claimed(next(learn.model.parameters())) == 'cuda:0' and mode.mixes == []
    assert res['checked'] == 4 and res['max_abs_diff'] <= res['atol']

def test_a_model_loaded_for_the_gpu_predicts_there(exported, synthetic):
    "`load_scene_learner` on a GPU (the self-training teacher's `load_scene_model`): model and batches on the GPU, CPU numbers"
    from scene_cls.runtime import load_scene_model
    from scene_cls.selftrain import pseudo_labels
    pkl, learn = exported
    files = sorted(pred_files(synthetic))
    want = pseudo_labels(load_scene_model(pkl), files, threshold=0.0, progress=False)
    with fake_cuda() as mode:
        teacher = load_scene_model(pkl)                     # cpu=None: the GPU, as on a GPU machine
        assert claimed(next(teacher.learn.model.parameters())) == 'cuda:0' and teacher.learn.dls.device == CUDA
        got = pseudo_labels(teacher, files, threshold=0.0, progress=False)
        assert mode.mixes == []
    pd.testing.assert_frame_equal(got.drop(columns='confidence'), want.drop(columns='confidence'))
    np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-5)
