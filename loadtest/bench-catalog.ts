/**
 * npm run bench:catalog -- --ads N [--queries Q] [--ef E] [--quantization f32|f16|bf16] [--load-ads M]
 *
 * Retrieval over N synthetic ads (clustered unit vectors of F = FUSED_DIM dims, like ad embeddings
 * around their categories): the HNSW index's build time and memory, its queries/s and recall@10
 * against the exact scan, and the exact scan's queries/s, where the exact scan is the processor's
 * own scorer graph (MatMul + TopK on onnxruntime), on one thread each as on one inference worker.
 * With --load-ads M > 0 it also loads M synthetic ads through the real catalog updater (decode +
 * encode + fuse, creatives shared among ads in a pool), cold and then warm from the persisted
 * embeddings. Prints one JSON object. Figures on a shared, loaded box are indicative.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { clusteredUnitVectors } from '../src/devtools/clustered-vectors.js';
import { INDEX_QUANTIZATIONS, VectorIndex, type IndexQuantization, type SearchOut } from '../src/inference/vector-index.js';
import { buildScorer } from '../src/models/graphs/scorer.js';
import { loadConfig } from '../src/app/config/load-config.js';
import { measureCatalogLoad } from './catalog-load.js';

const { values: args } = parseArgs({
  options: {
    ads: { type: 'string', default: '10000' },
    queries: { type: 'string', default: '2000' },
    'exact-queries': { type: 'string' },
    ef: { type: 'string' },
    connectivity: { type: 'string' },
    quantization: { type: 'string' },
    'build-threads': { type: 'string', default: '0' },
    'load-ads': { type: 'string', default: '0' },
  },
});
const config = loadConfig({ env: process.env });
const N = Number(args.ads);
const Q = Number(args.queries);
const F = config.fusedDim;
const K = 10;
const BATCH = 64;
const ef = Number(args.ef ?? config.annExpansionSearch);
const connectivity = Number(args.connectivity ?? config.annConnectivity);
const quantization = (args.quantization ?? config.annQuantization) as IndexQuantization;
if (!INDEX_QUANTIZATIONS.includes(quantization)) throw new Error(`--quantization must be one of ${INDEX_QUANTIZATIONS.join(', ')}`);
// The exact scan is linear in N: fewer queries at a million keep the run short (q/s stays comparable).
const QE = Math.min(Q, Number(args['exact-queries'] ?? Math.max(128, Math.round((2000 * 10_000) / N))));

const all = clusteredUnitVectors(N + Q, F, { clusters: Math.max(20, Math.round(N / 2000)), spread: 0.25, seed: 42 });
const ads = all.subarray(0, N * F);
const queries = all.slice(N * F);

function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

// ---- index build ----
const rssBefore = rssMiB();
const index = new VectorIndex({ dim: F, connectivity, expansionAdd: config.annExpansionAdd, expansionSearch: ef, quantization }, N);
let t = performance.now();
const CHUNK = 65_536;
for (let at = 0; at < N; at += CHUNK) {
  const n = Math.min(CHUNK, N - at);
  index.upsert(Int32Array.from({ length: n }, (_, i) => at + i), ads.subarray(at * F, (at + n) * F), Number(args['build-threads']));
}
const buildS = (performance.now() - t) / 1000;
const indexMiB = rssMiB() - rssBefore;

// ---- ANN queries, one thread ----
const out: SearchOut = { scores: new Float32Array(BATCH * K), slots: new BigInt64Array(BATCH * K) };
const annTop = new Int32Array(Q * K);
t = performance.now();
for (let at = 0; at < Q; at += BATCH) {
  const n = Math.min(BATCH, Q - at);
  index.search(queries.subarray(at * F, (at + n) * F), n, K, out, 1);
  for (let i = 0; i < n * K; i++) annTop[at * K + i] = Number(out.slots[i]);
}
const annQps = Q / ((performance.now() - t) / 1000);

// ---- exact scan: the scorer graph on onnxruntime, one thread ----
const session = await ort.InferenceSession.create(Buffer.from(buildScorer({ dim: F })), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const adsTensor = new ort.Tensor('float32', ads, [N, F]);
const kTensor = new ort.Tensor('int64', BigInt64Array.of(BigInt(K)), [1]);
let hits = 0;
t = performance.now();
for (let at = 0; at < QE; at += BATCH) {
  const n = Math.min(BATCH, QE - at);
  const res = await session.run({ users: new ort.Tensor('float32', queries.slice(at * F, (at + n) * F), [n, F]), ads: adsTensor, k: kTensor });
  const idx = res.indices!.data as BigInt64Array;
  for (let q = 0; q < n; q++) {
    const approx = new Set(annTop.subarray((at + q) * K, (at + q + 1) * K));
    for (let j = 0; j < K; j++) if (approx.has(Number(idx[q * K + j]))) hits++;
  }
}
const exactQps = QE / ((performance.now() - t) / 1000);
await session.release();

const load = Number(args['load-ads']) > 0 ? await measureCatalogLoad(config, Number(args['load-ads'])) : undefined;

const result = {
  ads: N,
  dim: F,
  index: { quantization, connectivity, expansionAdd: config.annExpansionAdd, expansionSearch: ef, buildS: round(buildS), buildAdsPerS: Math.round(N / buildS), memoryMiB: Math.round(indexMiB), bytesPerAd: Math.round((indexMiB * 2 ** 20) / N) },
  annQps: Math.round(annQps),
  exactQps: Math.round(exactQps),
  speedup: round(annQps / exactQps),
  recallAt10: round(hits / (QE * K), 4),
  queries: { ann: Q, exact: QE, batch: BATCH, threads: 1 },
  ...(load ? { load } : {}),
};
process.stdout.write(`${JSON.stringify(result)}\n`);

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
