/**
 * The engine the processor talks to: one batcher per model in front of one shared worker pool.
 * It owns the only cross-model decision (which model gets a free worker: the one whose oldest
 * request has waited longest) and turns queue depths into one saturated/unsaturated signal that the
 * Kafka adapter uses to pause and resume consumption.
 */
import { performance } from 'node:perf_hooks';
import { ConfigError } from '../domain/errors.js';
import type { Logger } from '../util/log.js';
import { ModelBatcher } from './model-batcher.js';
import { WorkerPool, type ModelCheckData, type StagedModel } from './worker-pool.js';
import type { ModelReady } from './inference-worker.js';
import { InferenceError, type IndexUpdate, type IndexWorker, type InferenceReporter, type InferenceRequest, type InferenceResult, type ModelSpec, type TensorData } from './types.js';

export interface InferenceEngineOptions {
  readonly models: readonly ModelSpec[];
  /** Worker threads; each holds a session of every model. */
  readonly workers: number;
  /** Tried in order for each model, e.g. ['cuda', 'webgpu', 'cpu']. */
  readonly executionProviders: readonly string[];
  /** ORT threads per session run; workers x this should not exceed the cores. */
  readonly intraOpNumThreads: number;
  readonly logger: Logger;
  readonly reporter?: InferenceReporter;
}

/** Pressure hysteresis: saturated above 80 % of a model's queue bound, clear when all are below 40 %. */
const SATURATED_ABOVE = 0.8;
const CLEAR_BELOW = 0.4;

export class InferenceEngine {
  private readonly batchers = new Map<string, ModelBatcher>();
  private readonly specs = new Map<string, ModelSpec>();
  private pool!: WorkerPool;
  private readonly providerByModel: Record<string, string> = {};
  private readonly warmShapes = new Map<string, Readonly<Record<string, readonly number[]>>>();
  private readonly pressureListeners = new Set<(saturated: boolean) => void>();
  private saturated = false;
  private closing: Promise<void> | undefined;
  private pumping = false;
  private pumpAgain = false;

  private constructor(
    opts: InferenceEngineOptions,
    private readonly logger: Logger,
  ) {
    for (const spec of opts.models) {
      this.specs.set(spec.name, spec);
      this.batchers.set(
        spec.name,
        new ModelBatcher({
          spec,
          executor: { run: (model, items, inputs) => this.pool.run(model, items, inputs) },
          ...(opts.reporter ? { reporter: opts.reporter } : {}),
          wake: () => this.pump(),
          onDepth: () => this.checkPressure(),
        }),
      );
    }
  }

  /** Validates the options, starts the workers and creates every model's session in each of them. */
  static async start(opts: InferenceEngineOptions): Promise<InferenceEngine> {
    validate(opts);
    const logger = opts.logger.child({ component: 'inference' });
    const engine = new InferenceEngine(opts, logger);
    const { pool, ready } = await WorkerPool.start({
      size: opts.workers,
      init: { models: opts.models, executionProviders: opts.executionProviders, intraOpNumThreads: opts.intraOpNumThreads },
      onIdle: () => engine.pump(),
      onCrash: (e) => engine.workerCrashed(e),
    });
    engine.pool = pool;
    engine.recordProviders(ready, opts.reporter);
    return engine;
  }

  infer(model: string, request: InferenceRequest): Promise<InferenceResult> {
    if (this.closing) return Promise.reject(new InferenceError('ENGINE_CLOSED', 'inference engine is closed'));
    const batcher = this.batchers.get(model);
    if (!batcher) return Promise.reject(new InferenceError('UNKNOWN_MODEL', `no model named ${model}`));
    return batcher.submit(request);
  }

  /** Sets (or replaces) a resident input in every worker; later batches use it. The data is copied. */
  async setResident(model: string, name: string, data: TensorData, dims: number[]): Promise<void> {
    if (this.closing) throw new InferenceError('ENGINE_CLOSED', 'inference engine is closed');
    const spec = this.specs.get(model);
    if (!spec) throw new InferenceError('UNKNOWN_MODEL', `no model named ${model}`);
    const r = spec.residentInputs?.find((x) => x.name === name);
    if (!r) throw new InferenceError('BAD_REQUEST', `model ${model} has no resident input ${name}`);
    if (!(r.type === 'float32' ? data instanceof Float32Array : data instanceof BigInt64Array)) {
      throw new InferenceError('BAD_REQUEST', `resident ${model}.${name} must be ${r.type}`);
    }
    const count = dims.reduce((a, b) => a * b, 1);
    if (!dims.every((d) => Number.isInteger(d) && d >= 0) || count !== data.length) {
      throw new InferenceError('BAD_REQUEST', `resident ${model}.${name}: ${data.length} values do not fill dims [${dims}]`);
    }
    await this.pool.setResident(model, name, data, dims);
  }

  /**
   * Stages a new version of a running model (same name, tensors and shapes; another file) in
   * every worker without stopping: each loads and warms it beside the old one and runs `check`
   * (a held-back sample it must reproduce). Rejects with MODEL_FAILED, naming the reason, if any
   * worker refuses it: the old version keeps serving. The handle's commit() makes the next batch
   * use it; the caller picks the moment (between rankings, see ServingVersion).
   */
  async stageModel(spec: ModelSpec, check: ModelCheckData | null): Promise<StagedModel> {
    if (this.closing) throw new InferenceError('ENGINE_CLOSED', 'inference engine is closed');
    const old = this.specs.get(spec.name);
    if (!old) throw new InferenceError('UNKNOWN_MODEL', `no model named ${spec.name}`);
    const same = (x: readonly { name: string; type: string; itemShape: readonly number[] }[], y: typeof x): boolean => x.length === y.length && x.every((t, i) => t.name === y[i]!.name && t.type === y[i]!.type && t.itemShape.join() === y[i]!.itemShape.join());
    if (!same(spec.inputs, old.inputs) || !same(spec.outputs, old.outputs)) throw new InferenceError('BAD_REQUEST', `model ${spec.name}: a new version must keep the inputs and outputs of the running one`);
    const staged = await this.pool.stageModel(spec, check);
    return {
      commit: async () => {
        await staged.commit();
        this.specs.set(spec.name, spec);
      },
      discard: () => staged.discard(),
    };
  }

  /** The spec a model runs with now. */
  spec(model: string): ModelSpec | undefined {
    return this.specs.get(model);
  }

  /**
   * Removes and (re)sets slots of an index model (ModelSpec.index) on every worker; later batches
   * see the change. `whole` returns the full content, for a worker started as a replacement.
   */
  async updateIndex(model: string, update: IndexUpdate, whole: () => IndexUpdate, on?: IndexWorker): Promise<void> {
    const index = this.indexSpec(model);
    if (update.vectors.length !== update.slots.length * index.dim) {
      throw new InferenceError('BAD_REQUEST', `index ${model}: ${update.slots.length} slots need ${update.slots.length * index.dim} values, got ${update.vectors.length}`);
    }
    await this.pool.updateIndex(model, update, whole, on);
  }

  /** The worker a one-worker build (updateIndex's `on`) should go to. */
  indexLead(): number {
    return this.pool.indexLead();
  }

  /** Worker `worker` saves its index of `model` into the folder `dir`. */
  async saveIndex(model: string, dir: string, worker: number): Promise<void> {
    this.indexSpec(model);
    await this.pool.saveIndex(model, dir, worker);
  }

  /** Every worker but `except` loads the index of `model` saved in `dir`, which holds exactly `slots`. */
  async loadIndex(model: string, dir: string, slots: Int32Array, except?: number): Promise<void> {
    this.indexSpec(model);
    await this.pool.loadIndex(model, dir, slots, except);
  }

  private indexSpec(model: string): NonNullable<ModelSpec['index']> {
    if (this.closing) throw new InferenceError('ENGINE_CLOSED', 'inference engine is closed');
    const spec = this.specs.get(model);
    if (!spec) throw new InferenceError('UNKNOWN_MODEL', `no model named ${model}`);
    if (!spec.index) throw new InferenceError('BAD_REQUEST', `model ${model} is no index`);
    return spec.index;
  }

  /** Model -> execution provider its sessions really run on. */
  providers(): Record<string, string> {
    return { ...this.providerByModel };
  }

  /**
   * Per output of the model, the shape of one item as its warm-up on a zero batch really gave it;
   * undefined for a model warmed only once its resident inputs are set (the scorer). What the
   * model's card declares is checked against it (see checkOutputShapes in src/models/model-setup.ts).
   */
  warmUpShapes(model: string): Readonly<Record<string, readonly number[]>> | undefined {
    return this.warmShapes.get(model);
  }

  /** Items queued (not yet sent), all models together. */
  queuedItems(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.queuedItems;
    return n;
  }

  /** Called with true when a model's queue passes 80 % of its bound, with false once all are under 40 %. Returns an unsubscribe. */
  onPressure(listener: (saturated: boolean) => void): () => void {
    this.pressureListeners.add(listener);
    return () => this.pressureListeners.delete(listener);
  }

  /** Refuses new work, rejects what is queued (ENGINE_CLOSED), lets running batches finish, stops the workers. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const err = new InferenceError('ENGINE_CLOSED', 'inference engine closed');
      for (const b of this.batchers.values()) b.close(err);
      await Promise.all([...this.batchers.values()].map((b) => b.drained()));
      await this.pool.close();
    })();
    return this.closing;
  }

  /**
   * Hands free workers to models that have a batch to send, longest-waiting first, since the pool is
   * shared. Runs on every enqueue, timer and freed worker; cheap when nothing can be sent.
   */
  private pump(): void {
    if (this.closing) return;
    // Listeners and reporters run inside; a nested call just asks for one more round.
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        if (this.pool.aliveCount === 0) {
          const err = new InferenceError('MODEL_FAILED', 'no inference worker is alive');
          for (const b of this.batchers.values()) b.close(err);
          return;
        }
        const now = performance.now();
        while (this.pool.idleCount > 0) {
          let best: ModelBatcher | undefined;
          let requests = 0;
          for (const b of this.batchers.values()) {
            const d = b.decide(now, true);
            if (d.action === 'send' && (best === undefined || b.oldestEnqueuedAt < best.oldestEnqueuedAt)) {
              best = b;
              requests = d.requests;
            }
          }
          if (!best) break;
          best.send(requests);
        }
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private checkPressure(): void {
    let anyHigh = false;
    let allLow = true;
    for (const b of this.batchers.values()) {
      if (b.queuedItems > SATURATED_ABOVE * b.maxQueueItems) anyHigh = true;
      if (b.queuedItems >= CLEAR_BELOW * b.maxQueueItems) allLow = false;
    }
    const next = this.saturated ? !allLow : anyHigh;
    if (next === this.saturated) return;
    this.saturated = next;
    for (const l of this.pressureListeners) l(next);
  }

  private workerCrashed(e: { worker: number; reason: string; replaced: boolean }): void {
    this.logger.error(e.replaced ? 'inference worker died; its batch failed, starting a replacement' : 'inference worker replacement could not start', { worker: e.worker, reason: e.reason });
    // With no worker left, queued requests would wait forever.
    if (!e.replaced) this.pump();
  }

  /** Keeps worker 0's report; logs once per model that fell back, and once if workers disagree. */
  private recordProviders(ready: readonly Record<string, ModelReady>[], reporter: InferenceReporter | undefined): void {
    for (const model of this.batchers.keys()) {
      const first = ready[0]![model]!;
      this.providerByModel[model] = first.provider;
      reporter?.provider(model, first.provider);
      if (first.failures.length > 0) {
        this.logger.warn('inference model fell back to another execution provider', {
          model,
          provider: first.provider,
          failed: first.failures.map((f) => ({ provider: f.provider, reason: f.reason })),
        });
      }
      if (first.outputItemShapes) this.warmShapes.set(model, first.outputItemShapes);
      const others = [...new Set(ready.map((r) => r[model]!.provider))];
      if (others.length > 1) this.logger.warn('inference workers run a model on different execution providers', { model, providers: others });
    }
  }

}

/** Each bad setting is named with what it allows. */
function validate(opts: InferenceEngineOptions): void {
  if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new ConfigError('inference.workers', `must be an integer >= 1, got ${opts.workers}`);
  if (!Number.isInteger(opts.intraOpNumThreads) || opts.intraOpNumThreads < 1) throw new ConfigError('inference.intraOpNumThreads', `must be an integer >= 1, got ${opts.intraOpNumThreads}`);
  if (opts.executionProviders.length === 0) throw new ConfigError('inference.executionProviders', 'must list at least one provider, e.g. ["cpu"]');
  if (opts.models.length === 0) throw new ConfigError('inference.models', 'must list at least one model');
  const seen = new Set<string>();
  opts.models.forEach((m, i) => {
    const at = `inference.models[${i}]`;
    if (!m.name) throw new ConfigError(`${at}.name`, 'must not be empty');
    if (seen.has(m.name)) throw new ConfigError(`${at}.name`, `duplicate model name ${m.name}`);
    seen.add(m.name);
    if (m.inputs.length === 0) throw new ConfigError(`${at}.inputs`, 'must list at least one batched input');
    for (const t of [...m.inputs, ...m.outputs]) {
      if (!t.itemShape.every((d) => Number.isInteger(d) && d >= 1)) throw new ConfigError(`${at}.${t.name}.itemShape`, `dimensions must be integers >= 1, got [${t.itemShape}]`);
    }
    if (m.rerank) validateRerank(m, opts.models, `${at}.rerank`);
    if (m.index) {
      const x = m.index;
      const out = (name: string, type: string): boolean => m.outputs.some((t) => t.name === name && t.type === type);
      const input = (name: string, type: string, width: number): boolean => m.inputs.some((t) => t.name === name && t.type === type && t.itemShape.join() === String(width));
      if (!Number.isInteger(x.poolSize) || x.poolSize < x.k) throw new ConfigError(`${at}.index.poolSize`, `must be an integer >= k (${x.k}), got ${x.poolSize}`);
      if (m.inputs.length !== 2 || !input(x.query, 'float32', x.dim) || !input(x.pool, 'int64', x.poolSize)) throw new ConfigError(`${at}.inputs`, `an index takes a float32 input ${x.query} [${x.dim}] and an int64 input ${x.pool} [${x.poolSize}]`);
      if (!out(x.scores, 'float32') || !out(x.slots, 'int64') || !out(x.found, 'int64')) throw new ConfigError(`${at}.outputs`, `an index outputs ${x.scores} (float32), ${x.slots} and ${x.found} (int64)`);
    }
    const b = m.batcher;
    if (!Number.isInteger(b.maxBatchSize) || b.maxBatchSize < 1) throw new ConfigError(`${at}.batcher.maxBatchSize`, `must be an integer >= 1, got ${b.maxBatchSize}`);
    if (!(b.maxQueueDelayMs >= 0) || !Number.isFinite(b.maxQueueDelayMs)) throw new ConfigError(`${at}.batcher.maxQueueDelayMs`, `must be a finite number >= 0, got ${b.maxQueueDelayMs}`);
    if (!Number.isInteger(b.maxQueueItems) || b.maxQueueItems < b.maxBatchSize) {
      throw new ConfigError(`${at}.batcher.maxQueueItems`, `must be an integer >= maxBatchSize (${b.maxBatchSize}), got ${b.maxQueueItems}`);
    }
  });
}

/** A re-rank names tensors of two specs: each must be there, with the type the worker packs. */
function validateRerank(m: ModelSpec, models: readonly ModelSpec[], at: string): void {
  const r = m.rerank!;
  const second = models.find((x) => x.name === r.model);
  const has = (list: readonly { name: string; type: string }[] | undefined, name: string, type: string): boolean => list?.some((t) => t.name === name && t.type === type) ?? false;
  if (!second || second.rerank) throw new ConfigError(`${at}.model`, `must name another model without a re-rank of its own, got ${r.model}`);
  if (!has(m.inputs, r.queries, 'float32')) throw new ConfigError(`${at}.queries`, `must be a float32 batched input of ${m.name}, got ${r.queries}`);
  if (!m.index && !has(m.residentInputs, r.candidates, 'float32')) throw new ConfigError(`${at}.candidates`, `must be a float32 resident input of ${m.name}, got ${r.candidates}`);
  if (!has(m.outputs, r.indices, 'int64') || !has(m.outputs, r.output, 'float32')) throw new ConfigError(`${at}.output`, `${m.name} must list ${r.indices} (int64) and ${r.output} (float32) among its outputs`);
  const names = second.inputs.map((t) => t.name).sort().join(',');
  if (names !== [r.queryInput, r.candidateInput].sort().join(',') || !second.inputs.every((t) => t.type === 'float32')) {
    throw new ConfigError(`${at}.model`, `${r.model} must have exactly the float32 inputs ${r.queryInput} and ${r.candidateInput}, has [${names}]`);
  }
}
