/**
 * The executor: N worker threads, each holding every model's session. It knows which worker is
 * idle, hands one batch to one idle worker, fans resident inputs out to all of them, and replaces a
 * worker that dies (failing only the batch it held). It does not queue: the batchers ask for a
 * worker only when `idleCount` says one is free.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InferenceError, type IndexUpdate, type IndexWorker } from './types.js';
import type { FromWorker, ModelCheck, ModelReady, ToWorker, WorkerInit } from './inference-worker.js';
import type { ModelSpec } from './types.js';

export interface RunOutput {
  readonly outputs: readonly { readonly buffer: ArrayBuffer; readonly dims: readonly number[] }[];
  readonly computeMs: number;
  readonly copiedOutputs: number;
}

export interface WorkerPoolOptions {
  readonly size: number;
  readonly init: WorkerInit;
  /** Called when a worker becomes idle (after a run, or when a replacement is ready). */
  readonly onIdle: () => void;
  /** Called when a worker died unexpectedly, and again if its replacement could not start. */
  readonly onCrash?: (e: { worker: number; reason: string; replaced: boolean }) => void;
  /** Worker entry; defaults to inference-worker next to this module. */
  readonly entry?: URL;
}

/** A held-back sample a new model version must reproduce (see ModelCheck in inference-worker.ts). */
export interface ModelCheckData {
  readonly items: number;
  /** In the order of the spec's inputs. */
  readonly inputs: readonly (Float32Array | BigInt64Array)[];
  readonly expected: Float32Array;
  readonly tolerance: number;
}

/** A new model version loaded and checked in every worker, not serving yet. */
export interface StagedModel {
  commit(): Promise<void>;
  discard(): Promise<void>;
}

/** One setResident, remembered so a replacement worker gets the same state as the others. */
interface Resident {
  readonly model: string;
  readonly name: string;
  readonly data: Float32Array | BigInt64Array;
  readonly dims: number[];
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly index: number;
  worker: Worker;
  state: 'starting' | 'idle' | 'busy' | 'dead';
  /** Answers awaited from this worker, by message id. */
  readonly pending: Map<number, Pending>;
}

/** How to start the worker script: a file, or (for TypeScript sources) a bootstrap evaluated as code. */
interface Entry {
  readonly script: URL | string;
  readonly eval: boolean;
}

/**
 * The compiled .js worker next to this module. From TypeScript sources (vitest, tsx) it is the .ts
 * one, compiled on the fly by tsx. `execArgv: ['--import', 'tsx']` does not do that on Node 20: tsx
 * (4.23) registers its loader only on the main thread there (in workers only from Node 22.22 /
 * 24.11), and the worker fails with "Unknown file extension .ts". So a small bootstrap registers
 * tsx's loader inside the worker, then imports the .ts entry; on any Node version.
 */
function entryFor(url: URL): Entry {
  if (!url.pathname.endsWith('.ts')) return { script: url, eval: false };
  const script = `import(${JSON.stringify(tsxEsmApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return { script, eval: true };
}

/**
 * URL of tsx's ESM API, read from tsx's exports map: require.resolve would pick its CommonJS build,
 * whose register() points Node 20's module.register at a path that does not exist.
 */
function tsxEsmApi(): string {
  const pkgPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return new URL(pkg.exports['./esm/api']!.import.default, pathToFileURL(pkgPath)).href;
}

function defaultEntry(): Entry {
  return entryFor(new URL(import.meta.url.endsWith('.ts') ? './inference-worker.ts' : './inference-worker.js', import.meta.url));
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly residents = new Map<string, Resident>();
  /** Per index model, the whole content as one update: what a replacement worker starts from. */
  private readonly indexSources = new Map<string, () => IndexUpdate>();
  private nextId = 1;
  private closing = false;
  private readonly entry: Entry;
  /** What a (re)started worker loads: the options' init, with swapped models replaced. */
  private init: WorkerInit;
  /** Set once start() has succeeded: from then on a dying worker is a crash to report and replace. */
  private running = false;

  private constructor(private readonly opts: WorkerPoolOptions) {
    this.entry = opts.entry ? entryFor(opts.entry) : defaultEntry();
    this.init = opts.init;
  }

  /** Starts every worker and waits until each has created (and warmed) its sessions; `ready` has one report per worker. */
  static async start(opts: WorkerPoolOptions): Promise<{ pool: WorkerPool; ready: Record<string, ModelReady>[] }> {
    const pool = new WorkerPool(opts);
    const started = await Promise.allSettled(Array.from({ length: opts.size }, (_, i) => pool.spawn(i)));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    const ready = started.map((s) => (s as PromiseFulfilledResult<Record<string, ModelReady>>).value);
    for (const slot of pool.slots) pool.setState(slot, 'idle');
    pool.running = true;
    return { pool, ready };
  }

  get idleCount(): number {
    let n = 0;
    for (const s of this.slots) if (s.state === 'idle') n++;
    return n;
  }

  /** Workers alive (idle, busy, or starting as a replacement). */
  get aliveCount(): number {
    let n = 0;
    for (const s of this.slots) if (s.state !== 'dead') n++;
    return n;
  }

  /**
   * Runs one batch on an idle worker, transferring `inputs` (the caller's buffers are detached).
   * Rejects with MODEL_FAILED when the run fails or the worker dies during it.
   */
  run(model: string, items: number, inputs: ArrayBuffer[]): Promise<RunOutput> {
    const slot = this.slots.find((s) => s.state === 'idle');
    if (!slot) return Promise.reject(new Error('WorkerPool.run called with no idle worker'));
    const id = this.nextId++;
    this.setState(slot, 'busy');
    const done = this.request<RunOutput>(slot, id, { type: 'run', id, model, items, inputs }, inputs);
    // The worker is free again whatever the outcome, unless it died (then a replacement takes over).
    const release = (): void => {
      if (slot.state === 'busy') {
        this.setState(slot, 'idle');
        this.opts.onIdle();
      }
    };
    return done.then(
      (out) => {
        release();
        return out;
      },
      (err: Error) => {
        release();
        throw err instanceof InferenceError ? err : new InferenceError('MODEL_FAILED', err.message);
      },
    );
  }

  /**
   * Sets a resident input on every running worker (one copy each, transferred); resolves when all
   * acknowledged. It is remembered first, so a replacement starting meanwhile replays it too.
   */
  async setResident(model: string, name: string, data: Float32Array | BigInt64Array, dims: number[]): Promise<void> {
    const r: Resident = { model, name, data: data.slice(), dims: [...dims] };
    this.residents.set(`${model}\u0000${name}`, r);
    // Starting workers are skipped: they receive every remembered resident once their sessions exist.
    const sends = this.slots.filter((s) => s.state === 'idle' || s.state === 'busy').map((slot) => this.sendResident(slot, r));
    const settled = await Promise.allSettled(sends);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw new InferenceError('MODEL_FAILED', `setResident ${model}.${name}: ${(failed.reason as Error).message}`);
  }

  /**
   * Stages a new version of a model in every running worker: each loads, warms and checks it
   * beside the old one. All or none: if any refuses, every worker drops it (MODEL_FAILED, the old
   * one keeps serving); else the handle's commit() puts it in place in every worker (the next
   * batch uses it) and makes it what a replacement worker loads, or discard() drops it.
   */
  async stageModel(spec: ModelSpec, check: ModelCheckData | null): Promise<StagedModel> {
    const live = this.slots.filter((s) => s.state === 'idle' || s.state === 'busy');
    const staging = live.map((slot) => {
      const id = this.nextId++;
      // Each worker needs its own buffers: slice, transfer.
      const c: ModelCheck | null = check && { items: check.items, inputs: check.inputs.map((a) => a.slice().buffer as ArrayBuffer), expected: check.expected.slice().buffer as ArrayBuffer, tolerance: check.tolerance };
      return this.request<void>(slot, id, { type: 'stage', id, spec, check: c }, c ? [...c.inputs, c.expected] : []);
    });
    const settled = await Promise.allSettled(staging);
    const finish = async (type: 'commit' | 'discard'): Promise<void> => {
      const done = await Promise.allSettled(live.map((slot) => {
        const id = this.nextId++;
        return this.request<void>(slot, id, { type, id, model: spec.name }, []);
      }));
      const failed = done.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed && type === 'commit') throw new InferenceError('MODEL_FAILED', `model ${spec.name}: commit failed: ${(failed.reason as Error).message}`);
    };
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await finish('discard');
      throw new InferenceError('MODEL_FAILED', `model ${spec.name} (${spec.path}) refused: ${(failed.reason as Error).message}`);
    }
    return {
      commit: async () => {
        this.init = { ...this.init, models: this.init.models.map((m) => (m.name === spec.name ? spec : m)) };
        await finish('commit');
      },
      discard: () => finish('discard'),
    };
  }

  /**
   * Applies one change to an index model on every running worker (each gets its own copy);
   * resolves when all acknowledged. `whole` gives the index's full content for a replacement
   * worker, so the pool keeps no second copy of the catalog.
   */
  async updateIndex(model: string, update: IndexUpdate, whole: () => IndexUpdate, on?: IndexWorker): Promise<void> {
    this.indexSources.set(model, whole);
    const targets = on ? [this.liveSlot(on.worker, `updateIndex ${model}`)] : this.liveSlots();
    await this.all(`updateIndex ${model}`, targets.map((slot) => this.sendIndexUpdate(slot, model, update, on?.threads ?? 1)));
  }

  /** The first running worker's number: the one a build on one worker (IndexWorker) goes to. */
  indexLead(): number {
    const slot = this.liveSlots()[0];
    if (!slot) throw new InferenceError('MODEL_FAILED', 'no inference worker is running');
    return slot.index;
  }

  /** Worker `worker` writes its index of `model` into `dir` (VectorIndex.save). */
  async saveIndex(model: string, dir: string, worker: number): Promise<void> {
    const slot = this.liveSlot(worker, `saveIndex ${model}`);
    const id = this.nextId++;
    await this.all(`saveIndex ${model}`, [this.request<void>(slot, id, { type: 'indexSave', id, model, dir }, [])]);
  }

  /** Every running worker but `except` replaces its index of `model` by the one saved in `dir`, holding `slots`. */
  async loadIndex(model: string, dir: string, slots: Int32Array, except?: number): Promise<void> {
    const sends = this.liveSlots().filter((s) => s.index !== except).map((slot) => {
      const id = this.nextId++;
      const buffer = slots.slice().buffer as ArrayBuffer;
      return this.request<void>(slot, id, { type: 'indexLoad', id, model, dir, slots: buffer }, [buffer]);
    });
    await this.all(`loadIndex ${model}`, sends);
  }

  private liveSlots(): Slot[] {
    return this.slots.filter((s) => s.state === 'idle' || s.state === 'busy');
  }

  private liveSlot(worker: number, what: string): Slot {
    const slot = this.slots[worker];
    if (!slot || (slot.state !== 'idle' && slot.state !== 'busy')) throw new InferenceError('MODEL_FAILED', `${what}: inference worker ${worker} is not running`);
    return slot;
  }

  /** Resolves when every send was acknowledged; else MODEL_FAILED with the first failure. */
  private async all(what: string, sends: Promise<void>[]): Promise<void> {
    const settled = await Promise.allSettled(sends);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw new InferenceError('MODEL_FAILED', `${what}: ${(failed.reason as Error).message}`);
  }

  private sendIndexUpdate(slot: Slot, model: string, u: IndexUpdate, threads = 1): Promise<void> {
    const [removed, slots, vectors] = [u.removed, u.slots, u.vectors].map((a) => a.slice().buffer as ArrayBuffer) as [ArrayBuffer, ArrayBuffer, ArrayBuffer];
    const id = this.nextId++;
    return this.request<void>(slot, id, { type: 'indexUpdate', id, model, removed, slots, vectors, threads }, [removed, slots, vectors]);
  }

  /** Stops every worker: asks each to release its sessions, and terminates those that take too long. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        for (const p of slot.pending.values()) p.reject(new InferenceError('ENGINE_CLOSED', 'engine closed'));
        slot.pending.clear();
        if (slot.state === 'dead') return;
        slot.state = 'dead';
        const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()));
        slot.worker.postMessage({ type: 'close' } satisfies ToWorker);
        const timer = setTimeout(() => void slot.worker.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private sendResident(slot: Slot, r: Resident): Promise<void> {
    // Each worker needs its own buffer (ORT refuses a SharedArrayBuffer): slice once, transfer.
    const copy = r.data.slice().buffer as ArrayBuffer;
    const id = this.nextId++;
    return this.request<void>(slot, id, { type: 'setResident', id, model: r.model, name: r.name, buffer: copy, dims: r.dims }, [copy]);
  }

  private request<T>(slot: Slot, id: number, msg: ToWorker, transfer: ArrayBuffer[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.updateRef(slot);
      slot.worker.postMessage(msg, transfer);
    });
  }

  /**
   * A worker holds the process open only while an answer is awaited from it, so an engine someone
   * forgot to close does not keep a finished process alive, yet a running batch is never cut off.
   */
  private updateRef(slot: Slot): void {
    if (slot.pending.size > 0 || slot.state === 'starting') slot.worker.ref();
    else slot.worker.unref();
  }

  private setState(slot: Slot, state: Slot['state']): void {
    slot.state = state;
    this.updateRef(slot);
  }

  /** Starts worker `index` (first start or replacement); resolves with its model report once ready. */
  private spawn(index: number): Promise<Record<string, ModelReady>> {
    const worker = new Worker(this.entry.script, { eval: this.entry.eval, workerData: this.init });
    const slot: Slot = { index, worker, state: 'starting', pending: new Map() };
    this.slots[index] = slot;
    this.updateRef(slot);
    let lastError = '';

    return new Promise((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            resolve(msg.models);
            break;
          case 'initFailed':
            lastError = msg.message;
            reject(new Error(msg.message));
            void worker.terminate();
            break;
          case 'result':
          case 'ack':
          case 'failed': {
            const p = slot.pending.get(msg.id);
            if (!p) break;
            slot.pending.delete(msg.id);
            this.updateRef(slot);
            if (msg.type === 'failed') p.reject(new InferenceError('MODEL_FAILED', msg.message));
            else p.resolve(msg.type === 'result' ? { outputs: msg.outputs, computeMs: msg.computeMs, copiedOutputs: msg.copiedOutputs } : undefined);
            break;
          }
        }
      });
      // 'error' is an uncaught exception inside the worker; 'exit' always follows it.
      worker.on('error', (err) => {
        lastError = err.message;
      });
      worker.on('exit', (code) => {
        const wasStarting = slot.state === 'starting';
        const reason = lastError || `worker exited with code ${code}`;
        slot.state = 'dead';
        for (const p of slot.pending.values()) p.reject(new InferenceError('MODEL_FAILED', `inference worker ${index} died: ${reason}`));
        slot.pending.clear();
        if (wasStarting) reject(new Error(`inference worker ${index} failed to start: ${reason}`));
        if (this.closing || !this.running || this.slots[index] !== slot) return;
        if (wasStarting) {
          // A replacement that cannot start is not retried: the same cause would kill the next one.
          this.opts.onCrash?.({ worker: index, reason, replaced: false });
          return;
        }
        this.opts.onCrash?.({ worker: index, reason, replaced: true });
        void this.replace(index);
      });
    });
  }

  /** Starts a fresh worker in a dead slot and replays the resident inputs before offering it work. */
  private async replace(index: number): Promise<void> {
    try {
      await this.spawn(index);
    } catch {
      return; // reported by the exit handler of the replacement (replaced: false)
    }
    const slot = this.slots[index]!;
    // A resident the graph refuses failed the same way on the other workers and was reported to
    // setResident's caller then; it must not keep this worker out of service.
    for (const r of this.residents.values()) await this.sendResident(slot, r).catch(() => undefined);
    for (const [model, whole] of this.indexSources) await this.sendIndexUpdate(slot, model, whole()).catch(() => undefined);
    if (this.closing || slot.state !== 'starting') return;
    this.setState(slot, 'idle');
    this.opts.onIdle();
  }
}
