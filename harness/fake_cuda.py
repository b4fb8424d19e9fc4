"""A stand-in GPU on a machine without one, to catch a model on one device and its batches on another.

Inside `fake_cuda()` torch believes a GPU is there (`torch.cuda.is_available()` is True, fastai's `default_device()`
is `cuda:0`). A tensor moved or made "on CUDA" stays in CPU memory but claims the GPU, every operation hands its
inputs' device on to its results, and an operation that meets tensors of two devices raises `DeviceMix`, as CUDA
would ("Expected all tensors to be on the same device"); `.numpy()` of a GPU tensor fails as on a GPU. A model that
fastai has not moved to its DataLoaders' device fails here as it fails on a GPU; one that has runs, on the CPU, with
the CPU's numbers. A file read "onto the GPU" (`torch.load(map_location='cuda')`) is read into CPU memory, its
tensors claiming the GPU.

Tensors made before `fake_cuda` began claim nothing and mix with anything (so do gradients, which autograd makes
out of sight of torch's Python API, until read through `.grad`): build the models under test inside it, or mark
them with `tag_cpu`. It is a test double, not CUDA: no memory limits, no streams, no kernels; torch's own machinery
that queries the real driver (the ONNX exporter's decompositions) runs with it paused (`FakeCudaMode.paused`).
"""
from __future__ import annotations
import contextlib
import torch
from torch.overrides import TorchFunctionMode, _pop_mode_temporarily
from torch.utils._pytree import tree_flatten

CUDA = torch.device('cuda', 0)
_TAG = '_scene_cls_claimed_device'   # an attribute no library uses
T = torch.Tensor

class DeviceMix(RuntimeError):
    "Tensors of two devices met in one operation"

def claimed(t) -> str|None:
    "The device a tensor claims: 'cuda:0', 'cpu', or `None` when it was made out of sight of the stand-in"
    return t.__dict__.get(_TAG) if isinstance(t, T) else None

def _name(d) -> str|None:
    if d is None: return None
    d = d if isinstance(d, torch.device) else torch.device(d)
    return f'cuda:{d.index or 0}' if d.type == 'cuda' else d.type

def _gpu(dev) -> bool: return bool(dev) and dev.startswith('cuda')

def _tag(out, dev:str|None):
    "`out` (a tensor, or a structure of them) with every tensor claiming `dev`"
    if dev is not None:
        for t in tree_flatten(out)[0]:
            if isinstance(t, T): t.__dict__[_TAG] = dev
    return out

def tag_cpu(module:torch.nn.Module) -> torch.nn.Module:
    "Mark `module`'s parameters and buffers as on the CPU (made before `fake_cuda` began, they claim nothing)"
    for t in list(module.parameters()) + list(module.buffers()): t.__dict__.setdefault(_TAG, 'cpu')
    return module

# operations that may take tensors of two devices: a copy between them, indexing by a CPU index, setting `.data`
_CROSS = {T.copy_, T.to, T.__getitem__, T.__setitem__, T.data.__set__, torch._has_compatible_shallow_copy_type}

class FakeCudaMode(TorchFunctionMode):
    "The torch-function mode of `fake_cuda`: devices claimed, handed on and checked; `mixes` lists what it refused"
    def __init__(self): super().__init__(); self.ops, self.mixes = 0, []

    def _move(self, t, dev:str|None, real:callable):
        "`real(copy)` tagged with `dev`: a copy when the tensor changes device, as CUDA makes one"
        return _tag(real(dev is not None and dev != (claimed(t) or 'cpu')), dev or claimed(t))

    def _to(self, args, kwargs):
        dev, dtype, non_blocking, fmt = torch._C._nn._parse_to(*args[1:], **{k: v for k, v in kwargs.items() if k != 'copy'})
        dev = _name(dev) or (claimed(args[1]) if len(args) > 1 and isinstance(args[1], T) else None)
        def real(copy):   # every tensor is really in CPU memory
            kw = dict(dtype=dtype, non_blocking=non_blocking, copy=copy or bool(kwargs.get('copy')), memory_format=fmt)
            return T.to(args[0], torch.device('cpu'), **{k: v for k, v in kw.items() if v is not None})
        return self._move(args[0], dev, real)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        if func is torch._C._nn._parse_to: return func(*args, **kwargs)   # reads a device, makes no tensor
        if func == T.device.__get__:
            return torch.device(claimed(args[0])) if _gpu(claimed(args[0])) else func(*args)
        if func == T.is_cuda.__get__: return _gpu(claimed(args[0]))
        if func in (T.data.__get__, T.grad.__get__): return _tag(func(*args), claimed(args[0]))
        if func == T.data.__set__: func(*args); _tag(args[0], claimed(args[1])); return None
        if func is T.to: return self._to(args, kwargs)
        if func is T.cuda:
            d = args[1] if len(args) > 1 else kwargs.get('device')
            dev = _name(torch.device('cuda', d if isinstance(d, int) else 0) if not isinstance(d, (str, torch.device)) else d)
            return self._move(args[0], dev, lambda copy: T.clone(args[0]) if copy else args[0])
        if func is T.cpu: return self._move(args[0], 'cpu', lambda copy: T.clone(args[0]) if copy else args[0])
        if func is T.pin_memory: return args[0]
        if func is T.is_pinned: return False
        if func is T.get_device: return int(claimed(args[0]).split(':')[1]) if _gpu(claimed(args[0])) else -1
        if func is T.numpy and _gpu(claimed(args[0])):
            raise TypeError(f"can't convert {claimed(args[0])} device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first.")
        ts = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, T)]
        devs = {claimed(t) for t in ts if t.dim() > 0} - {None}   # a 0-dim CPU tensor may meet a GPU tensor, as on CUDA
        if len(devs) > 1 and func not in _CROSS:
            name = getattr(func, '__qualname__', None) or getattr(func, '__name__', repr(func))
            self.mixes.append((name, sorted(devs)))
            raise DeviceMix(f"Expected all tensors to be on the same device, but found at least two devices, "
                            f"{' and '.join(sorted(devs))}! (in {name}, under fake_cuda)")
        dev = _name(kwargs['device']) if kwargs.get('device') is not None else None
        if _gpu(dev): kwargs = {**kwargs, 'device': torch.device('cpu')}   # made "on the GPU": in CPU memory
        out = func(*args, **kwargs)
        if dev is None:
            every = {claimed(t) for t in ts} - {None}
            dev = devs.pop() if len(devs) == 1 else every.pop() if len(every) == 1 else None if ts else 'cpu'
        return _tag(out, dev)

    @contextlib.contextmanager
    def paused(self):
        "Inside, plain torch again (the real `torch.cuda`, no devices claimed): for torch's own machinery that asks the driver"
        _swap(self.saved)
        try:
            with _pop_mode_temporarily(): yield
        finally: _swap(self.saved)

_CUDA_API = dict(is_available=lambda: True, device_count=lambda: 1, current_device=lambda: 0, is_initialized=lambda: True,
                 set_device=lambda d: None, synchronize=lambda d=None: None, empty_cache=lambda: None,
                 is_bf16_supported=lambda *a, **k: True, get_device_name=lambda d=None: 'Fake T4',
                 get_device_capability=lambda d=None: (7, 5), _lazy_init=lambda: None, init=lambda: None)
# the DataLoader asks the accelerator API whether to pin memory: not for a stand-in (there is no GPU memory to pin for)
_ACCELERATOR = dict(is_available=lambda: False, current_device_index=lambda: 0)

def _param(new_param):
    def _new(cls, data=None, requires_grad=True):   # a parameter is a new object around its data: it claims the data's device
        p = new_param(cls, data, requires_grad)
        if claimed(data): p.__dict__[_TAG] = claimed(data)
        return p
    return _new

def _load(load):
    def _inner(f, map_location=None, *args, **kwargs):   # read "onto the GPU": into CPU memory, each tensor claiming the GPU
        dev = _name(map_location) if isinstance(map_location, (str, torch.device)) else None
        if not _gpu(dev): return load(f, map_location, *args, **kwargs)
        return _tag(load(f, 'cpu', *args, **kwargs), dev)
    return _inner

def _swap(saved:dict):
    "Exchange what is in place with what `saved` holds, for each (object, name)"
    for (obj, k), v in list(saved.items()): saved[obj, k] = getattr(obj, k); setattr(obj, k, v)

@contextlib.contextmanager
def fake_cuda():
    "Inside, a GPU that computes on the CPU and raises `DeviceMix` where a real one would refuse mixed devices; yields the mode"
    fakes = {**{(torch.cuda, k): v for k, v in _CUDA_API.items()}, **{(torch.accelerator, k): v for k, v in _ACCELERATOR.items()},
             (torch.nn.Parameter, '__new__'): _param(torch.nn.Parameter.__new__), (torch, 'load'): _load(torch.load)}
    mode = FakeCudaMode()
    _swap(fakes); mode.saved = fakes   # `fakes` now holds the real ones
    try:
        with mode: yield mode
    finally: _swap(fakes)
