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
 *
 * Candidate pools (RETRIEVAL_POOL_DRIFT, --pool-drift D, --pool-size P): each exact query's pool is
 * the index's top P; the query is then turned by the angle whose cosine distance is D (the most a
 * pooled interest may have moved), towards an ad (as an event moves an interest towards what it
 * engaged with), and the pool's best k (k = 2 x TOP_K, what an interest asks for) are compared
 * with the exact scan's and the index's best k for the turned query: recall@k of each against the
 * exact scan, and of the pool against the index (what the processor's own check measures).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { clusteredUnitVectors } from '../src/devtools/clustered-vectors.js';
import { dot, squaredNorm } from '../src/util/vectors.js';
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
    'pool-drift': { type: 'string' },
    'pool-size': { type: 'string' },
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

// ---- candidate pools: the pool's answer for a query turned by the largest drift a pool may serve ----
const KP = 2 * config.topK;
const P = Math.max(KP, Number(args['pool-size'] ?? config.retrievalPoolSize));
const drift = Number(args['pool-drift'] ?? config.retrievalPoolDrift);
const pools = drift > 0 ? await poolRecall() : undefined;

async function poolRecall(): Promise<{ drift: number; size: number; k: number; poolVsExact: number; annVsExact: number; poolVsAnn: number }> {
  const theta = Math.acos(1 - drift);
  const turned = new Float32Array(QE * F);
  for (let q = 0; q < QE; q++) {
    // Towards an ad, orthogonalised against the query: the turn is exactly theta.
    const a = ads.subarray(((q * 7919) % N) * F, (((q * 7919) % N) + 1) * F);
    const along = dot(a, 0, queries, q * F, F);
    const u = new Float64Array(F);
    for (let j = 0; j < F; j++) u[j] = a[j]! - along * queries[q * F + j]!;
    const norm = squaredNorm(u, 0, F);
    for (let j = 0; j < F; j++) turned[q * F + j] = Math.cos(theta) * queries[q * F + j]! + (Math.sin(theta) * u[j]!) / Math.sqrt(norm);
  }
  const poolOut: SearchOut = { scores: new Float32Array(BATCH * P), slots: new BigInt64Array(BATCH * P) };
  const kOut: SearchOut = { scores: new Float32Array(BATCH * KP), slots: new BigInt64Array(BATCH * KP) };
  const pooled = new Int32Array(QE * KP);
  const annTurned = new Int32Array(QE * KP);
  for (let at = 0; at < QE; at += BATCH) {
    const n = Math.min(BATCH, QE - at);
    index.search(queries.subarray(at * F, (at + n) * F), n, P, poolOut, 1);
    const rows = turned.subarray(at * F, (at + n) * F);
    for (let q = 0; q < n; q++) index.scorePool(rows, q, poolOut.slots, q * P, P, KP, kOut);
    for (let i = 0; i < n * KP; i++) pooled[at * KP + i] = Number(kOut.slots[i]);
    index.search(rows, n, KP, kOut, 1);
    for (let i = 0; i < n * KP; i++) annTurned[at * KP + i] = Number(kOut.slots[i]);
  }
  const kp = new ort.Tensor('int64', BigInt64Array.of(BigInt(KP)), [1]);
  let poolHits = 0;
  let annHits = 0;
  let mutual = 0;
  for (let at = 0; at < QE; at += BATCH) {
    const n = Math.min(BATCH, QE - at);
    const res = await session.run({ users: new ort.Tensor('float32', turned.slice(at * F, (at + n) * F), [n, F]), ads: adsTensor, k: kp });
    const idx = res.indices!.data as BigInt64Array;
    for (let q = 0; q < n; q++) {
      const truth = new Set(Array.from(idx.subarray(q * KP, (q + 1) * KP), Number));
      const ann = new Set(annTurned.subarray((at + q) * KP, (at + q + 1) * KP));
      for (const s of pooled.subarray((at + q) * KP, (at + q + 1) * KP)) {
        if (truth.has(s)) poolHits++;
        if (ann.has(s)) mutual++;
      }
      for (const s of ann) if (truth.has(s)) annHits++;
    }
  }
  return { drift, size: P, k: KP, poolVsExact: round(poolHits / (QE * KP), 4), annVsExact: round(annHits / (QE * KP), 4), poolVsAnn: round(mutual / (QE * KP), 4) };
}

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
  ...(pools ? { pools } : {}),
  ...(load ? { load } : {}),
};
process.stdout.write(`${JSON.stringify(result)}\n`);

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
