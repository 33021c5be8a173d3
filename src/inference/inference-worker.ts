/**
 * Worker-thread entry: owns one ONNX Runtime session per model and runs batches on them.
 * session.run() blocks the thread that calls it, so it runs here and never on the event loop that
 * consumes Kafka. Batches arrive and leave as transferred ArrayBuffers; nothing here throws out of a
 * message handler: a failing run becomes that batch's 'failed' answer and the worker keeps serving.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import type { ModelSpec, RerankSpec, TensorSpec, TensorType } from './types.js';
import { VectorIndex } from './vector-index.js';

// ---- protocol (type-only imports of it are erased, so the pool never loads this file) ----

export interface WorkerInit {
  readonly models: readonly ModelSpec[];
  /** Tried in order per model; the first whose session can be created (and warmed) wins. */
  readonly executionProviders: readonly string[];
  readonly intraOpNumThreads: number;
}

export interface ProviderFailure {
  readonly provider: string;
  readonly reason: string;
}

export interface ModelReady {
  readonly provider: string;
  readonly failures: readonly ProviderFailure[];
  /**
   * Per output, the shape of one item as the zero-batch warm-up really gave it (dims after the
   * batch). Absent for a model warmed later, once its resident inputs are set.
   */
  readonly outputItemShapes?: Readonly<Record<string, readonly number[]>>;
}

export type ToWorker =
  /** `inputs` in the order of spec.inputs, each exactly items * product(itemShape) values. */
  | { readonly type: 'run'; readonly id: number; readonly model: string; readonly items: number; readonly inputs: ArrayBuffer[] }
  | { readonly type: 'setResident'; readonly id: number; readonly model: string; readonly name: string; readonly buffer: ArrayBuffer; readonly dims: number[] }
  /** Load, warm and check a new version of a model beside the running one (see ModelCheck); answered ack or failed. */
  | { readonly type: 'stage'; readonly id: number; readonly spec: ModelSpec; readonly check: ModelCheck | null }
  /** Put the staged version in place of the running one: the next batch uses it. */
  | { readonly type: 'commit'; readonly id: number; readonly model: string }
  /** Drop the staged version (another worker refused it). */
  | { readonly type: 'discard'; readonly id: number; readonly model: string }
  /** An IndexUpdate for an index model: Int32 `removed` and `slots`, Float32 `vectors`. */
  | { readonly type: 'indexUpdate'; readonly id: number; readonly model: string; readonly removed: ArrayBuffer; readonly slots: ArrayBuffer; readonly vectors: ArrayBuffer; readonly threads: number }
  /** Write an index model's index into `dir` (VectorIndex.save). */
  | { readonly type: 'indexSave'; readonly id: number; readonly model: string; readonly dir: string }
  /** Replace an index model's index by the one saved in `dir`, holding the Int32 `slots`. */
  | { readonly type: 'indexLoad'; readonly id: number; readonly model: string; readonly dir: string; readonly slots: ArrayBuffer }
  | { readonly type: 'close' };

/**
 * A held-back sample a new model version must reproduce before it may serve: `inputs` in the
 * order of spec.inputs (items rows each), and the values its first output must give, to within
 * `tolerance`. Also refused: any output value that is not finite.
 */
export interface ModelCheck {
  readonly items: number;
  readonly inputs: ArrayBuffer[];
  readonly expected: ArrayBuffer;
  readonly tolerance: number;
}

export type FromWorker =
  | { readonly type: 'ready'; readonly models: Record<string, ModelReady> }
  | { readonly type: 'initFailed'; readonly message: string }
  /** `outputs` in the order of spec.outputs. `copiedOutputs` counts outputs that could not be transferred as is. */
  | { readonly type: 'result'; readonly id: number; readonly outputs: { buffer: ArrayBuffer; dims: number[] }[]; readonly computeMs: number; readonly copiedOutputs: number }
  | { readonly type: 'failed'; readonly id: number; readonly message: string }
  | { readonly type: 'ack'; readonly id: number };

// ---- worker state ----

interface LoadedModel {
  readonly spec: ModelSpec;
  /** Null for an index model (spec.index), which runs `index` instead. */
  readonly session: ort.InferenceSession | null;
  readonly index: VectorIndex | null;
  /** The outputs its graph has: the spec's, but for a re-rank's. */
  readonly graphOutputs: readonly string[];
  readonly residents: Map<string, ort.Tensor>;
  /** Set once a zero batch has run, i.e. the session has allocated and is known to execute. */
  warmed: boolean;
}

const port = parentPort;
if (!port) throw new Error('inference-worker must run in a worker thread');
const models = new Map<string, LoadedModel>();
/** New versions loaded and checked, waiting for 'commit'. */
const staged = new Map<string, LoadedModel>();
/** Replaced versions, released once no run is in flight (a run holds its model for its whole batch). */
const retired: LoadedModel[] = [];
let runsInFlight = 0;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

/** ORT's messages end with a newline; keep log fields and error messages on one line. */
function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim();
}

function graphOutputs(spec: ModelSpec): string[] {
  return spec.outputs.map((t) => t.name).filter((name) => name !== spec.rerank?.output);
}

function rowLength(t: TensorSpec): number {
  let n = 1;
  for (const d of t.itemShape) n *= d;
  return n;
}

/** A typed array over `buffer` (no copy): what ort.Tensor wants for the type. */
function view(type: TensorType, buffer: ArrayBuffer): Float32Array | BigInt64Array {
  return type === 'float32' ? new Float32Array(buffer) : new BigInt64Array(buffer);
}

function zeros(type: TensorType, length: number): Float32Array | BigInt64Array {
  return type === 'float32' ? new Float32Array(length) : new BigInt64Array(length);
}

/** Every resident input has been set (true for models without any). */
function residentsComplete(m: LoadedModel): boolean {
  return (m.spec.residentInputs ?? []).every((r) => m.residents.has(r.name));
}

function feeds(m: LoadedModel, items: number, inputs: readonly (Float32Array | BigInt64Array)[]): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {};
  m.spec.inputs.forEach((t, i) => {
    f[t.name] = new ort.Tensor(t.type, inputs[i]!, [items, ...t.itemShape]);
  });
  for (const [name, tensor] of m.residents) f[name] = tensor;
  return f;
}

/** A run's outputs by name: the session's, plus the re-rank's (see RerankSpec). */
type Outputs = Record<string, { readonly type: string; readonly data: unknown; readonly dims: readonly number[] }>;

/** The model's graph on one batch, then its re-rank if it has one. */
async function execute(m: LoadedModel, items: number, inputs: readonly (Float32Array | BigInt64Array)[]): Promise<Outputs> {
  const out: Outputs = m.index ? search(m, m.index, items, inputs) : await m.session!.run(feeds(m, items, inputs), m.graphOutputs as string[]);
  const rerank = m.spec.rerank;
  if (!rerank) return out;
  return { ...out, [rerank.output]: await rerankRun(rerank, m, items, inputs, out) };
}

/**
 * An index model's outputs for one batch: fresh buffers, transferred to the caller as they are.
 * Rows that bring a candidate pool are scored against it; the others search the graph for the top
 * poolSize, whose first k are the answer and all of which come back as `found` (the next pool).
 */
function search(m: LoadedModel, index: VectorIndex, items: number, inputs: readonly (Float32Array | BigInt64Array)[]): Outputs {
  const spec = m.spec.index!;
  const { k, poolSize: P } = spec;
  const queries = inputs[m.spec.inputs.findIndex((t) => t.name === spec.query)] as Float32Array;
  const pool = inputs[m.spec.inputs.findIndex((t) => t.name === spec.pool)] as BigInt64Array;
  const out = { scores: new Float32Array(items * k), slots: new BigInt64Array(items * k) };
  const found = new BigInt64Array(items * P).fill(-1n);
  const searched: number[] = [];
  for (let q = 0; q < items; q++) {
    if (pool[q * P]! < 0n) searched.push(q);
    else index.scorePool(queries, q, pool, q * P, P, k, out);
  }
  if (searched.length > 0) {
    const d = spec.dim;
    let rows = queries;
    if (searched.length < items) {
      rows = new Float32Array(searched.length * d);
      searched.forEach((q, i) => rows.set(queries.subarray(q * d, (q + 1) * d), i * d));
    }
    const hits = { scores: new Float32Array(searched.length * P), slots: new BigInt64Array(searched.length * P) };
    index.search(rows, searched.length, P, hits);
    searched.forEach((q, i) => {
      out.scores.set(hits.scores.subarray(i * P, i * P + k), q * k);
      out.slots.set(hits.slots.subarray(i * P, i * P + k), q * k);
      found.set(hits.slots.subarray(i * P, (i + 1) * P), q * P);
    });
  }
  return {
    [spec.scores]: { type: 'float32', data: out.scores, dims: [items, k] },
    [spec.slots]: { type: 'int64', data: out.slots, dims: [items, k] },
    [spec.found]: { type: 'int64', data: found, dims: [items, P] },
  };
}

/**
 * The second model on every (query row, candidate) pair of the first one's top-k: pairs are packed
 * here, where the candidates' matrix already lives, so they never travel to the main thread.
 */
async function rerankRun(r: RerankSpec, m: LoadedModel, items: number, inputs: readonly (Float32Array | BigInt64Array)[], out: Outputs): Promise<Outputs[string]> {
  const second = models.get(r.model);
  if (!second) throw new Error(`model ${m.spec.name}: re-rank model ${r.model} is not loaded`);
  const indices = out[r.indices]!;
  const k = indices.dims[1] ?? 0;
  // An index model's candidates are its own vectors by slot; a graph's are a resident matrix by row.
  const resident = m.index ? undefined : m.residents.get(r.candidates)!;
  const matrix = m.index ? m.index.store : (resident!.data as Float32Array);
  const width = m.index ? m.index.params.dim : resident!.dims[1]!;
  const queries = inputs[m.spec.inputs.findIndex((t) => t.name === r.queries)]! as Float32Array;
  const at = indices.data as BigInt64Array;
  const pairs = items * k;
  if (pairs === 0) return { type: 'float32', data: new Float32Array(0), dims: [items, k] };
  const query = new Float32Array(pairs * width);
  const candidate = new Float32Array(pairs * width);
  for (let q = 0; q < items; q++) {
    const row = queries.subarray(q * width, (q + 1) * width);
    for (let j = 0; j < k; j++) {
      const p = (q * k + j) * width;
      const c = Number(at[q * k + j]!);
      query.set(row, p);
      // A slot of -1 (an index that found fewer than k) leaves a zero candidate; its score is dropped.
      if (c >= 0) candidate.set(matrix.subarray(c * width, (c + 1) * width), p);
    }
  }
  const byName: Record<string, Float32Array> = { [r.queryInput]: query, [r.candidateInput]: candidate };
  const scored = (await second.session!.run(feeds(second, pairs, second.spec.inputs.map((t) => byName[t.name]!)), [r.score]))[r.score]!;
  if (scored.type !== 'float32') throw new Error(`model ${r.model}: output ${r.score} is ${scored.type}, re-rank needs float32`);
  return { type: 'float32', data: scored.data, dims: [items, k] };
}

/**
 * One run on a single all-zero item: allocates the session's buffers before real traffic, and
 * proves the provider executes. Returns each output's item shape as the graph really gives it.
 */
async function warmUp(m: LoadedModel): Promise<Record<string, number[]>> {
  const out = await execute(m, 1, m.spec.inputs.map((t) => zeros(t.type, rowLength(t))));
  m.warmed = true;
  return Object.fromEntries(m.spec.outputs.map(({ name }) => [name, [...(out[name]?.dims ?? [])].slice(1)]));
}

/** The spec must name what the graph has; a typo would otherwise fail every batch at run time. */
function checkNames(spec: ModelSpec, session: ort.InferenceSession): void {
  const missingIn = [...spec.inputs.map((t) => t.name), ...(spec.residentInputs ?? []).map((r) => r.name)].filter((n) => !session.inputNames.includes(n));
  const missingOut = graphOutputs(spec).filter((n) => !session.outputNames.includes(n));
  if (missingIn.length > 0 || missingOut.length > 0) {
    throw new Error(`model ${spec.name}: graph has inputs [${session.inputNames}] and outputs [${session.outputNames}], spec names missing inputs [${missingIn}] outputs [${missingOut}]`);
  }
}

/**
 * Tries the providers one at a time: onnxruntime-node throws at session creation when a provider
 * cannot start (CUDA libraries missing, no WebGPU adapter), even when 'cpu' follows it in the same
 * list, so a list would not fall back by itself. Failures are kept to be reported once by the engine.
 */
async function load(spec: ModelSpec, init: WorkerInit): Promise<{ model: LoadedModel; ready: ModelReady }> {
  const failures: ProviderFailure[] = [];
  if (spec.index) {
    // Empty until its first update; nothing to warm: the search allocates per call.
    const { dim, connectivity, expansionAdd, expansionSearch, quantization } = spec.index;
    const index = new VectorIndex({ dim, connectivity, expansionAdd, expansionSearch, quantization });
    return { model: { spec, session: null, index, graphOutputs: graphOutputs(spec), residents: new Map(), warmed: true }, ready: { provider: 'usearch', failures } };
  }
  for (const provider of init.executionProviders) {
    let session: ort.InferenceSession | undefined;
    try {
      session = await ort.InferenceSession.create(spec.path, {
        executionProviders: [provider],
        intraOpNumThreads: init.intraOpNumThreads,
        // Parallelism comes from the worker pool; one graph branch at a time per worker.
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      checkNames(spec, session);
      const model: LoadedModel = { spec, session, index: null, graphOutputs: graphOutputs(spec), residents: new Map(), warmed: false };
      // A provider may create a session yet fail to execute; warming up here lets the next one take over.
      if (!residentsComplete(model)) return { model, ready: { provider, failures } };
      const outputItemShapes = await warmUp(model);
      return { model, ready: { provider, failures, outputItemShapes } };
    } catch (err) {
      failures.push({ provider, reason: message(err) });
      await session?.release().catch(() => undefined);
    }
  }
  throw new Error(`model ${spec.name}: no execution provider could run it: ${failures.map((f) => `${f.provider}: ${f.reason}`).join('; ')}`);
}

async function run(msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  const m = models.get(msg.model);
  if (!m) throw new Error(`unknown model ${msg.model}`);
  const missing = (m.spec.residentInputs ?? []).filter((r) => !m.residents.has(r.name)).map((r) => r.name);
  if (missing.length > 0) throw new Error(`model ${msg.model}: resident inputs not set: ${missing.join(', ')}`);

  // Tensors over the received buffers: ORT reads them in place.
  const inputs = m.spec.inputs.map((t, i) => view(t.type, msg.inputs[i]!));
  const started = performance.now();
  const out = await execute(m, msg.items, inputs);
  const computeMs = performance.now() - started;

  const outputs: { buffer: ArrayBuffer; dims: number[] }[] = [];
  const transfer: ArrayBuffer[] = [];
  let copiedOutputs = 0;
  for (const t of m.spec.outputs) {
    const tensor = out[t.name]!;
    if (tensor.type !== t.type) throw new Error(`model ${msg.model}: output ${t.name} is ${tensor.type}, spec says ${t.type}`);
    const data = tensor.data as Float32Array | BigInt64Array;
    // Checked with onnxruntime-node 1.30 on CPU: each output arrives in its own plain ArrayBuffer
    // (byteOffset 0, exact length) that ORT no longer references, so it is transferred as is. The
    // copy is for any other case (a view into a larger or shared buffer), which a transfer would
    // either reject or hand over whole.
    let buffer: ArrayBuffer;
    if (data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !transfer.includes(data.buffer)) {
      buffer = data.buffer;
    } else {
      buffer = data.slice().buffer as ArrayBuffer;
      copiedOutputs++;
    }
    transfer.push(buffer);
    outputs.push({ buffer, dims: [...tensor.dims] });
  }
  post({ type: 'result', id: msg.id, outputs, computeMs, copiedOutputs }, transfer);
}

async function setResident(msg: Extract<ToWorker, { type: 'setResident' }>): Promise<void> {
  const m = models.get(msg.model);
  if (!m) throw new Error(`unknown model ${msg.model}`);
  const r = (m.spec.residentInputs ?? []).find((x) => x.name === msg.name);
  if (!r) throw new Error(`model ${msg.model} has no resident input ${msg.name}`);
  m.residents.set(msg.name, new ort.Tensor(r.type, view(r.type, msg.buffer), msg.dims));
  // The first time all residents are there, warm up. A failure is reported to the caller but the
  // tensor stays: residents can depend on each other (a matrix and its top-k), so the next one set
  // may make them fit, and the warm-up is tried again then. Later replacements are not re-run here
  // for the same reason: they arrive one at a time.
  if (!m.warmed && residentsComplete(m)) {
    try {
      await warmUp(m);
    } catch (err) {
      throw new Error(`warm-up with the resident inputs set so far failed: ${message(err)}`);
    }
  }
}

/** Loads and warms a new version of a model, runs its check, and keeps it staged. */
async function stage(msg: Extract<ToWorker, { type: 'stage' }>): Promise<void> {
  const { model } = await load(msg.spec, workerData as WorkerInit);
  try {
    if (msg.check) {
      const c = msg.check;
      const out = await execute(model, c.items, model.spec.inputs.map((t, i) => view(t.type, c.inputs[i]!)));
      const first = out[model.spec.outputs[0]!.name];
      const got = first?.data as Float32Array | undefined;
      const expected = new Float32Array(c.expected);
      if (!got || got.length !== expected.length) throw new Error(`check: output ${model.spec.outputs[0]!.name} gave ${got?.length ?? 0} values for ${expected.length} expected`);
      for (let i = 0; i < got.length; i++) {
        if (!Number.isFinite(got[i]!)) throw new Error(`check: output value ${i} is ${got[i]}`);
        if (Math.abs(got[i]! - expected[i]!) > c.tolerance) throw new Error(`check: output value ${i} is ${got[i]}, the held-back sample expects ${expected[i]} (tolerance ${c.tolerance})`);
      }
    }
  } catch (err) {
    await model.session?.release().catch(() => undefined);
    throw err;
  }
  const previous = staged.get(msg.spec.name);
  if (previous) retired.push(previous);
  staged.set(msg.spec.name, model);
}

function releaseRetired(): void {
  if (runsInFlight > 0) return;
  for (const m of retired.splice(0)) void m.session?.release().catch(() => undefined);
}

function indexModelOf(name: string): LoadedModel & { index: VectorIndex } {
  const m = models.get(name);
  if (!m?.index) throw new Error(`model ${name} is no index`);
  return m as LoadedModel & { index: VectorIndex };
}

function indexUpdate(msg: Extract<ToWorker, { type: 'indexUpdate' }>): void {
  const m = indexModelOf(msg.model);
  m.index.remove(new Int32Array(msg.removed));
  m.index.upsert(new Int32Array(msg.slots), new Float32Array(msg.vectors), msg.threads);
}

function indexLoad(msg: Extract<ToWorker, { type: 'indexLoad' }>): void {
  const m = indexModelOf(msg.model);
  const { dim, connectivity, expansionAdd, expansionSearch, quantization } = m.spec.index!;
  // Searches run between messages, so the swap is atomic for them; the old replica is dropped.
  models.set(msg.model, { ...m, index: VectorIndex.load(msg.dir, { dim, connectivity, expansionAdd, expansionSearch, quantization }, new Int32Array(msg.slots)) });
}

async function close(): Promise<void> {
  for (const m of [...models.values(), ...staged.values(), ...retired]) await m.session?.release().catch(() => undefined);
  models.clear();
  staged.clear();
  port!.close();
}

async function start(init: WorkerInit): Promise<void> {
  const ready: Record<string, ModelReady> = {};
  try {
    for (const spec of init.models) {
      const loaded = await load(spec, init);
      models.set(spec.name, loaded.model);
      ready[spec.name] = loaded.ready;
    }
  } catch (err) {
    post({ type: 'initFailed', message: message(err) });
    return;
  }
  post({ type: 'ready', models: ready });
}

/** 'ack' when `work` succeeds, else 'failed' with its message. */
function answer(id: number, work: Promise<void>): void {
  work.then(
    () => post({ type: 'ack', id }),
    (err: unknown) => post({ type: 'failed', id, message: message(err) }),
  );
}

// Messages are handled as they come; the pool sends at most one 'run' at a time per worker, and a
// 'setResident' arriving during a run only swaps the tensor the next run will use.
port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'run':
      runsInFlight++;
      run(msg)
        .catch((err: unknown) => post({ type: 'failed', id: msg.id, message: message(err) }))
        .finally(() => {
          runsInFlight--;
          releaseRetired();
        });
      break;
    case 'stage':
      answer(msg.id, stage(msg));
      break;
    case 'commit':
    case 'discard': {
      const next = staged.get(msg.model);
      staged.delete(msg.model);
      if (!next) {
        post(msg.type === 'discard' ? { type: 'ack', id: msg.id } : { type: 'failed', id: msg.id, message: `model ${msg.model}: nothing staged to commit` });
        break;
      }
      if (msg.type === 'commit') {
        const old = models.get(msg.model);
        models.set(msg.model, next);
        if (old) retired.push(old);
      } else retired.push(next);
      releaseRetired();
      post({ type: 'ack', id: msg.id });
      break;
    }
    case 'setResident':
      answer(msg.id, setResident(msg));
      break;
    case 'indexUpdate':
    case 'indexSave':
    case 'indexLoad':
      try {
        if (msg.type === 'indexUpdate') indexUpdate(msg);
        else if (msg.type === 'indexSave') indexModelOf(msg.model).index.save(msg.dir);
        else indexLoad(msg);
        post({ type: 'ack', id: msg.id });
      } catch (err) {
        post({ type: 'failed', id: msg.id, message: message(err) });
      }
      break;
    case 'close':
      void close();
      break;
  }
});

void start(workerData as WorkerInit);
