/**
 * Inference benchmark: each model at batch 1 and through the micro-batcher, under the same
 * saturating load (many concurrent single-item requests), in one run, on worker threads as in
 * production. The scorer row is a ranking request as the processor sends it: the scorer, then the
 * CTR model on its top-k in the same worker run (ModelSpec.rerank). Also image decode/s (sharp)
 * apart from encode/s (the CNN), and the event-loop delay while the workers are saturated. Prints a
 * table, then one JSON line.
 *
 * `--packs efficientnet-lite0,use-multilingual` runs the fetched model packs (MODEL_PACKS) in place
 * of the default encoders, so the same table gives images/s (decode + encode) and texts/s per encoder.
 *
 *   npm run bench:inference [-- --seconds 3 --providers cpu --ads 10000 --workers N --packs P,...]
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/app/config/load-config.js';
import { CATEGORIES, productImage, reviewText, seededRandom } from '../src/devtools/synthetic.js';
import { decodeRgb, rgbToTensor } from '../src/preprocess/image-decoder.js';
import { InferenceEngine } from '../src/inference/inference-engine.js';
import type { InferenceReporter, ModelSpec, TensorData } from '../src/inference/types.js';
import { prepareModels } from '../src/models/model-setup.js';
import { bucketOf } from '../src/preprocess/buckets.js';
import { tokenRows } from '../src/preprocess/text-tokenizer.js';
import { createLogger } from '../src/util/log.js';
import { gaussian } from '../src/util/random.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    providers: { type: 'string', default: process.env.EXECUTION_PROVIDERS ?? 'cpu' },
    ads: { type: 'string', default: '10000' },
    workers: { type: 'string', default: String(availableParallelism()) },
    'max-batch': { type: 'string', default: '256' },
    'in-flight': { type: 'string', default: '1024' },
    'model-dir': { type: 'string' },
    packs: { type: 'string', default: process.env.MODEL_PACKS },
  },
});
const SECONDS = Number(args.seconds);
const ADS = Number(args.ads);
const WORKERS = Number(args.workers);
const MAX_BATCH = Number(args['max-batch']);
const IN_FLIGHT = Number(args['in-flight']);
// The shipped policy: a partial batch goes to an idle worker at once; batches fill while all are busy.
const DELAY_MS = 0;
const CHUNK_ITEMS = 32;

const config = loadConfig({
  env: {},
  overrides: { modelDir: args['model-dir'] ?? mkdtempSync(join(tmpdir(), 'adstream-bench-')), executionProviders: args.providers!.split(','), maxBatchSize: MAX_BATCH, maxQueueDelayMs: DELAY_MS, modelPacks: args.packs ?? null, ...(process.env.MODEL_PACK_DIR ? { modelPackDir: process.env.MODEL_PACK_DIR } : {}) },
});
const logger = createLogger('warn');
const models = await prepareModels(config);
const rand = seededRandom(1);
const normal = gaussian(rand);

/** One item's inputs for each model, drawn once and reused (the benchmark measures inference). */
async function sampleInputs(): Promise<Record<string, Record<string, TensorData>>> {
  const { image, text, click } = models.encoders;
  const img = await productImage(CATEGORIES[0]!, rand, 256, 'jpeg');
  const pixels = new Float32Array(3 * image.prep.size * image.prep.size);
  rgbToTensor(await decodeRgb(img, image.prep.size, 1e8, image.prep.resize), image.prep, pixels, 0);
  const rows = tokenRows(1, text.maxTokens);
  text.tokenizer.encodeInto(reviewText(CATEGORIES[1]!, rand, false), rows, 0);
  const textInputs: Record<string, TensorData> = { [text.inputs.inputIds.name]: rows.inputIds };
  if (text.inputs.attentionMask) textInputs[text.inputs.attentionMask.name] = rows.attentionMask;
  if (text.inputs.tokenTypeIds) textInputs[text.inputs.tokenTypeIds.name] = rows.tokenTypeIds;
  const users = Float32Array.from({ length: models.fusion.dim }, normal);
  return {
    image: { [image.inputs.pixels.name]: pixels },
    text: textInputs,
    click: { [click.inputs.itemIds.name]: BigInt64Array.of(bucketOf('item-1', click.itemBuckets, click.itemSeed)), [click.inputs.categoryIds.name]: BigInt64Array.of(bucketOf('shoes', click.categoryBuckets, click.categorySeed)) },
    scorer: { users },
  };
}

interface Phase {
  itemsPerS: number;
  meanBatch: number;
  queueWaitP99Ms: number;
  computeP99Ms: number;
  loopDelayP99Ms: number;
}

function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Repeats one item's inputs `n` times: a request of n items, as the processor sends per chunk. */
function repeated(inputs: Record<string, TensorData>, n: number): Record<string, TensorData> {
  return Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => {
      const out = v instanceof Float32Array ? new Float32Array(v.length * n) : new BigInt64Array(v.length * n);
      for (let i = 0; i < n; i++) out.set(v as never, i * v.length);
      return [k, out];
    }),
  );
}

/**
 * Saturates one model for SECONDS with concurrent requests of `itemsPerRequest` items, enough of
 * them in flight to keep every worker busy.
 */
async function phase(maxBatchSize: number, model: string, one: Record<string, TensorData>, itemsPerRequest = 1): Promise<Phase> {
  const inputs = repeated(one, itemsPerRequest);
  const inFlight = Math.max(8, Math.ceil(IN_FLIGHT / itemsPerRequest));
  const waits: number[] = [];
  const computes: number[] = [];
  let batches = 0;
  let items = 0;
  const reporter: InferenceReporter = {
    batch: (_m, e) => {
      batches++;
      items += e.batchSize;
      computes.push(e.computeMs);
      for (const w of e.queueWaitMs) waits.push(w);
    },
    queueDepth: () => undefined,
    rejected: () => undefined,
    provider: () => undefined,
  };
  const specs: ModelSpec[] = models.specs.map((s) => ({ ...s, batcher: { maxBatchSize, maxQueueDelayMs: DELAY_MS, maxQueueItems: Math.max(IN_FLIGHT, itemsPerRequest * 8) * 2 } }));
  // The model, and the one its requests re-rank with (the scorer's CTR model).
  const rerank = specs.find((s) => s.name === model)?.rerank?.model;
  const engine = await InferenceEngine.start({ models: specs.filter((s) => s.name === model || s.name === rerank), workers: WORKERS, executionProviders: [...config.executionProviders], intraOpNumThreads: 1, logger, reporter });
  try {
    if (model === 'scorer') {
      const dim = models.fusion.dim; // the scorer works in the fused space
      await engine.setResident('scorer', 'ads', Float32Array.from({ length: ADS * dim }, normal), [ADS, dim]);
      await engine.setResident('scorer', 'k', BigInt64Array.of(BigInt(config.topK)), [1]);
    }
    // Warm-up, then measure.
    await Promise.all(Array.from({ length: 64 }, () => engine.infer(model, { items: itemsPerRequest, inputs })));
    waits.length = 0;
    computes.length = 0;
    batches = 0;
    items = 0;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const end = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (performance.now() < end) await engine.infer(model, { items: itemsPerRequest, inputs });
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const elapsed = (performance.now() - t0) / 1000;
    loop.disable();
    return {
      itemsPerS: items / elapsed,
      meanBatch: items / Math.max(1, batches),
      queueWaitP99Ms: percentile(waits, 0.99),
      computeP99Ms: percentile(computes, 0.99),
      loopDelayP99Ms: loop.percentile(99) / 1e6,
    };
  } finally {
    await engine.close();
  }
}

/** sharp decode + resize of 512x512 JPEGs with a few in flight: the image path's other half. */
async function decodeRate(): Promise<number> {
  const jpegs = await Promise.all(CATEGORIES.map((c) => productImage(c, rand, 512, 'jpeg')));
  const size = models.encoders.image.prep.size;
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      while (performance.now() < end) {
        await decodeRgb(jpegs[(n + i) % jpegs.length]!, size, 1e8, models.encoders.image.prep.resize);
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

const sample = await sampleInputs();
const results: Record<string, unknown> = {};
const rows: string[] = [];
for (const model of ['image', 'text', 'click', 'scorer']) {
  const single = await phase(1, model, sample[model]!);
  const batched = await phase(MAX_BATCH, model, sample[model]!);
  // As the processor calls it: one request per modality per chunk, many items each.
  const chunked = await phase(MAX_BATCH, model, sample[model]!, CHUNK_ITEMS);
  const ratio = batched.itemsPerS / single.itemsPerS;
  results[model] = {
    batch1_items_per_s: Math.round(single.itemsPerS),
    batched_items_per_s: Math.round(batched.itemsPerS),
    ratio: Number(ratio.toFixed(2)),
    mean_batch: Number(batched.meanBatch.toFixed(1)),
    queue_wait_p99_ms: Number(batched.queueWaitP99Ms.toFixed(2)),
    compute_p99_ms: Number(batched.computeP99Ms.toFixed(2)),
    event_loop_delay_p99_ms: Number(batched.loopDelayP99Ms.toFixed(2)),
    chunked_items_per_s: Math.round(chunked.itemsPerS),
    chunked_event_loop_delay_p99_ms: Number(chunked.loopDelayP99Ms.toFixed(2)),
  };
  rows.push(
    `${model.padEnd(8)} ${String(Math.round(single.itemsPerS)).padStart(10)} ${String(Math.round(batched.itemsPerS)).padStart(12)} ${ratio.toFixed(1).padStart(7)}x ${batched.meanBatch.toFixed(1).padStart(8)} ${batched.queueWaitP99Ms.toFixed(2).padStart(10)} ${batched.computeP99Ms.toFixed(2).padStart(10)} ${batched.loopDelayP99Ms.toFixed(2).padStart(9)} ${String(Math.round(chunked.itemsPerS)).padStart(11)} ${chunked.loopDelayP99Ms.toFixed(2).padStart(9)}`,
  );
}
const decodePerS = await decodeRate();
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`;
console.log(`inference benchmark: ${WORKERS} worker(s), providers ${config.executionProviders.join(',')}, max batch ${MAX_BATCH}, max queue delay ${DELAY_MS} ms, ${IN_FLIGHT} single-item requests in flight, scorer over ${ADS} ads; ${machine}`);
console.log(`model     batch-1/s   batched/s    ratio mean-bat  qwait p99  comp p99  loop p99 | ${CHUNK_ITEMS}-item req/s  loop p99 (ms)`);
for (const r of rows) console.log(r);
const encodePerS = (results.image as { batched_items_per_s: number }).batched_items_per_s;
// Decode and encode run on different threads (libuv's pool, the workers), but share the cores: one image costs both.
const imagesPerS = 1 / (1 / decodePerS + 1 / encodePerS);
console.log(`models: ${models.version}`);
console.log(`image decode (sharp, 512x512 JPEG -> ${models.encoders.image.prep.size}x${models.encoders.image.prep.size} ${models.encoders.image.prep.resize ?? 'fill'}): ${Math.round(decodePerS)}/s; image encode (batched): ${encodePerS}/s; decode + encode, one after the other: ${Math.round(imagesPerS)} images/s`);
console.log(JSON.stringify({ machine, workers: WORKERS, providers: config.executionProviders, max_batch: MAX_BATCH, max_queue_delay_ms: DELAY_MS, ads: ADS, model_version: models.version, models: results, image_decode_per_s: Math.round(decodePerS), image_decode_encode_per_s: Math.round(imagesPerS) }));
