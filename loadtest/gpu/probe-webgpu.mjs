/**
 * WebGPU probe, run from the unpacked GPU bundle (pack.sh copies it to <bundle>/loadtest/): builds the
 * project's scorer graph (MatMul + TopK) in memory, creates an onnxruntime-node session on ONE
 * execution provider (default webgpu; no CPU fallback here), runs it once and compares its top-k
 * with a plain JS reference. Prints one JSON line: {provider, ok, ms, error?, maxAbsDiff?}.
 * Exit 0 when the provider ran and matched, 1 otherwise. A few seconds at most: run-on-device.sh
 * uses it to pick the Vulkan driver setting before the (minute-long) benchmark.
 *
 *   node loadtest/probe-webgpu.mjs [provider]
 */
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { buildScorer } from '../dist/inference/models/scorer.js';

const provider = process.argv[2] ?? 'webgpu';
const DIM = 64;
const ADS = 4096;
const USERS = 16;
const K = 8;

function rand(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

const r = rand(7);
const users = Float32Array.from({ length: USERS * DIM }, r);
const ads = Float32Array.from({ length: ADS * DIM }, r);
const t0 = performance.now();
let session;
try {
  session = await ort.InferenceSession.create(buildScorer({ dim: DIM }), { executionProviders: [provider], graphOptimizationLevel: 'all' });
  const created = performance.now() - t0;
  const out = await session.run({
    users: new ort.Tensor('float32', users, [USERS, DIM]),
    ads: new ort.Tensor('float32', ads, [ADS, DIM]),
    k: new ort.Tensor('int64', BigInt64Array.of(BigInt(K)), [1]),
  });
  const scores = out.scores.data;
  // Reference: the exact top-k scores per user, in float64.
  let maxAbsDiff = 0;
  for (let u = 0; u < USERS; u++) {
    const all = new Float64Array(ADS);
    for (let a = 0; a < ADS; a++) {
      let s = 0;
      for (let d = 0; d < DIM; d++) s += users[u * DIM + d] * ads[a * DIM + d];
      all[a] = s;
    }
    all.sort((x, y) => y - x);
    for (let j = 0; j < K; j++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(all[j] - scores[u * K + j]));
  }
  const ok = Number.isFinite(maxAbsDiff) && maxAbsDiff < 1e-2;
  console.log(JSON.stringify({ provider, ok, create_ms: Math.round(created), total_ms: Math.round(performance.now() - t0), maxAbsDiff }));
  process.exitCode = ok ? 0 : 1;
} catch (err) {
  console.log(JSON.stringify({ provider, ok: false, total_ms: Math.round(performance.now() - t0), error: String(err instanceof Error ? err.message : err).trim() }));
  process.exitCode = 1;
} finally {
  await session?.release().catch(() => undefined);
}
