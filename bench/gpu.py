"""The GPU rows: training steps with mixed precision and channels-last, what feeds the GPU, a launch over several GPUs.
On a machine without CUDA they say so; `tests/test_bench.py` runs every line a CPU can."""
from bench.stack import *

# ---------------------------------------------------------------- GPU
GPU_WHATS = ['ResNet50 150px training step, {}'.format(k) for k in ('float32, contiguous', 'mixed precision', 'channels-last', 'mixed precision + channels-last')] + \
            ['training DataLoader feeding the GPU, 150px, bs 64, num_workers={}'.format(w) for w in ('0', '2', '4', 'every CPU')] + \
            ['ResNet50 150px epoch, 2 GPUs / 1 GPU (accelerate launch)',
             'training DataLoader feeding the GPU, 150px, bs 64, num_workers=0: image store / JPEG decoded every epoch',
             'ResNet50 150px epoch on 1 GPU: with the image store / without']

def gpu_step_rates(data:Path, device:str, size:int=150, bs:int=64, warmup:int=3, n:int=10) -> dict:
    "images/s of ResNet50 training steps at `size`, for each of fp32 / AMP / channels-last / both, on `device`"
    res = {}
    for amp, cl in ((False, False), (True, False), (False, True), (True, True)):
        set_seed(0)
        learn = scene_learner(scene_aug_dls(data, size=size, bs=bs, check='off', device=device), 'resnet50', weights=None, path=TMP/'gpu')
        learn.cbs = learn.cbs.filter(lambda c: not isinstance(c, (MixedPrecision, ChannelsLast)))
        learn.model.to(memory_format=torch.contiguous_format)
        if cl: learn.add_cb(ChannelsLastModel()); learn.model.to(memory_format=torch.channels_last)
        if amp: learn.add_cb(DeviceMixedPrecision())
        clock = BatchClock(warmup, n)
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(clock):
            learn.fit(1, 1e-3)
        if device.startswith('cuda'): torch.cuda.synchronize()
        res[(amp, cl)] = rate(n*bs, clock.secs)
    return res

def gpu_loader_rates(data:Path, device:str, workers:list, n:int=10, bs:int=64, cache=False) -> dict:
    "images/s of the training DataLoader (decode, resize, or the image store; batch augmentations on `device`) at each worker count"
    res = {}
    for w in workers:
        dl = scene_aug_dls(data, size=150, bs=bs, check='off', num_workers=w, device=device, cache=cache, progress=False).train
        it = iter(dl); next(it)
        t = time.perf_counter()
        for _ in range(n): next(it)
        if device.startswith('cuda'): torch.cuda.synchronize()
        res[w] = rate(n*bs, time.perf_counter() - t); del it
    return res

def gpu_launch_seconds(data:Path, n:int, arch:str='resnet50', size:int=150, bs:int=64, cache:str='auto') -> float:
    "Training seconds of one unfrozen epoch of `arch` at `size`, in `n` processes (accelerate launch, one per GPU; gloo on a CPU)"
    out = TMP/f'gpu_launch_{n}'
    shutil.rmtree(out, ignore_errors=True)
    launcher = [sys.executable, '-m', 'accelerate.commands.launch', '--num_processes', str(n), '--num_machines', '1', '--mixed_precision', 'no',
                '--dynamo_backend', 'no'] + (['--multi_gpu'] if n > 1 else [])
    r = subprocess.run(launcher + ['-m', 'scene_cls.cli', 'train', '--data', str(data), '--arch', arch, '--size', str(size), '--weights', 'none',
                       '--freeze-epochs', '0', '--epochs', '1', '--lr', '1e-3', '--bs', str(bs), '--check', 'off', '--k', '2', '--out', str(out), '--no-progress', '--cache', cache], capture_output=True, text=True, cwd=REPO)
    if r.returncode: raise RuntimeError(r.stderr[-3000:])
    return json.loads((out/'run.json').read_text())['train_seconds']

def bench_gpu(quick:bool) -> list:
    "On a GPU (under 8 minutes on one T4): the training step with and without AMP / channels-last, the DataLoader's workers, 1 vs 2 GPUs"
    if not torch.cuda.is_available(): return [not_measured('gpu', w, '', 'no GPU') for w in GPU_WHATS]
    name, cpus = torch.cuda.get_device_name(), os.cpu_count()
    data = synthetic(n_train=100 if quick else 400, n_valid=20)    # 150px scenes: the compute of the real ones
    n = 3 if quick else 20
    steps = gpu_step_rates(data, 'cuda', n=n)
    base = steps[(False, False)]
    rows = [row('gpu', w, f'{name}: images/s, this / float32 contiguous', steps[k], base, note=f'synthetic 150px scenes; {n} steps after 3; bs 64, random weights')
            for w, k in zip(GPU_WHATS[:4], ((False, False), (True, False), (False, True), (True, True)))]
    workers = [0, 2, 4, cpus]
    loads = gpu_loader_rates(data, 'cuda', workers, n=3 if quick else 10)
    rows += [row('gpu', w, f'images/s, this / num_workers=0 ({cpus} CPUs)', loads[k], loads[0], note='synthetic 150px scenes; decode on the CPU, augment on the GPU')
             for w, k in zip(GPU_WHATS[4:8], workers)]
    if torch.cuda.device_count() < 2: rows.append(not_measured('gpu', GPU_WHATS[8], '', 'one GPU'))
    else:
        one, two = gpu_launch_seconds(data, 1), gpu_launch_seconds(data, 2)
        rows.append(row('gpu', GPU_WHATS[8], 'seconds, 1 GPU / 2 GPUs (bs 64 in all: 32 per GPU)', two, one, unit='s', higher_better=False,
                        note=f"{len(get_image_files(data/'seg_train'))} synthetic scenes; one unfrozen epoch; the same steps per epoch"))
    stored = gpu_loader_rates(data, 'cuda', [0], n=3 if quick else 10, cache=True)
    rows.append(row('gpu', GPU_WHATS[9], 'images/s, image store / JPEG (num_workers=0)', stored[0], loads[0], note='synthetic 150px scenes; augment on the GPU'))
    with_, without = gpu_launch_seconds(data, 1, cache='auto'), gpu_launch_seconds(data, 1, cache='off')
    rows.append(row('gpu', GPU_WHATS[10], 'seconds, without / with the store', with_, without, unit='s', higher_better=False,
                    note=f"{len(get_image_files(data/'seg_train'))} synthetic scenes; one unfrozen epoch, mixed precision, channels-last"))
    return rows
