/**
 * One model's dynamic batcher: validates and queues requests, asks the policy what to do, forms a
 * batch (one freshly allocated buffer per input, one copy per request slab), hands it to a worker,
 * and gives every request views of its own rows of the result. The engine decides which model gets
 * a free worker; this module only answers "what would you send now" and sends when told.
 */
import { performance } from 'node:perf_hooks';
import { decideBatch, type BatchDecision } from './batch-policy.js';
import { RequestQueue, type QueueEntry } from './request-queue.js';
import type { RunOutput } from './worker-pool.js';
import { InferenceError, type InferenceReporter, type InferenceRequest, type InferenceResult, type ModelSpec, type TensorData, type TensorType } from './types.js';

/** What runs a formed batch: the worker pool, or a stand-in in tests. */
export interface BatchExecutor {
  run(model: string, items: number, inputs: ArrayBuffer[]): Promise<RunOutput>;
}

export interface ModelBatcherOptions {
  readonly spec: ModelSpec;
  readonly executor: BatchExecutor;
  readonly reporter?: InferenceReporter;
  /** Asks the scheduler to run the policy again (after an enqueue, or when a wait is over). */
  readonly wake: () => void;
  /** The queue's item count changed (pressure signalling). */
  readonly onDepth: (items: number) => void;
}

/** A batch handed to a worker; its state is explicit so a failure can only touch its own requests. */
interface InFlightBatch {
  readonly id: number;
  readonly entries: readonly QueueEntry[];
  readonly items: number;
  readonly queueWaitMs: readonly number[];
  state: 'running' | 'done' | 'failed';
}

function isType(type: TensorType, data: unknown): data is TensorData {
  return type === 'float32' ? data instanceof Float32Array : data instanceof BigInt64Array;
}

function allocate(type: TensorType, length: number): TensorData {
  return type === 'float32' ? new Float32Array(length) : new BigInt64Array(length);
}

function over(type: TensorType, buffer: ArrayBuffer): TensorData {
  return type === 'float32' ? new Float32Array(buffer) : new BigInt64Array(buffer);
}

export class ModelBatcher {
  readonly name: string;
  private readonly queue: RequestQueue;
  /** Values per item of each batched input, in spec order (precomputed once). */
  private readonly rowLengths: readonly number[];
  private readonly inputNames: ReadonlySet<string>;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private nextBatchId = 1;

  constructor(private readonly opts: ModelBatcherOptions) {
    this.name = opts.spec.name;
    this.queue = new RequestQueue(opts.spec.batcher.maxQueueItems);
    this.rowLengths = opts.spec.inputs.map((t) => t.itemShape.reduce((a, b) => a * b, 1));
    this.inputNames = new Set(opts.spec.inputs.map((t) => t.name));
  }

  get queuedItems(): number {
    return this.queue.items;
  }

  get maxQueueItems(): number {
    return this.queue.maxItems;
  }

  /** NaN when nothing is queued. */
  get oldestEnqueuedAt(): number {
    return this.queue.oldestEnqueuedAt;
  }

  submit(request: InferenceRequest): Promise<InferenceResult> {
    const bad = this.validate(request);
    if (bad !== undefined) return this.refuse('BAD_REQUEST', Number.isInteger(request.items) ? request.items : 0, `model ${this.name}: ${bad}`);

    const nowEpoch = Date.now();
    const deadline = request.deadline ?? Number.POSITIVE_INFINITY;
    if (deadline <= nowEpoch) return this.refuse('DEADLINE_EXCEEDED', request.items, `model ${this.name}: deadline passed before the request was queued`);

    if (!this.queue.fits(request.items)) {
      // Expired requests are dead weight: drop them before refusing a live one.
      const freed = this.queue.removeExpired(nowEpoch);
      if (freed > 0) this.depthChanged('DEADLINE_EXCEEDED', freed);
      if (!this.queue.fits(request.items)) {
        return this.refuse('QUEUE_FULL', request.items, `model ${this.name}: ${this.queue.items} items queued, ${request.items} more would exceed maxQueueItems ${this.queue.maxItems}`);
      }
    }

    return new Promise<InferenceResult>((resolve, reject) => {
      this.queue.push({ request, enqueuedAt: performance.now(), deadline, resolve, reject });
      this.opts.wake();
      // Reported after the scheduler had its chance: a request sent at once is no pressure, and
      // the Kafka consumer should not be paused and resumed within one call.
      this.depthChanged();
    });
  }

  /**
   * The policy's answer for this model now. A 'wait' arms this model's timer; 'idle' needs none,
   * because the next enqueue or the next free worker runs the policy again.
   */
  decide(now: number, workerFree: boolean): BatchDecision {
    const { batcher } = this.opts.spec;
    const d = decideBatch({
      now,
      oldestEnqueuedAt: this.queue.oldestEnqueuedAt,
      totalItems: this.queue.items,
      sizes: this.queue.sizes,
      maxBatchSize: batcher.maxBatchSize,
      maxQueueDelayMs: batcher.maxQueueDelayMs,
      workerFree,
    });
    if (d.action === 'wait') this.arm(d.ms);
    return d;
  }

  /**
   * Forms a batch from the n oldest requests and runs it. Requests already past their deadline are
   * rejected, not sent. Returns false when nothing was left to send (the worker stays free).
   */
  send(n: number): boolean {
    const { live, expiredItems } = this.queue.take(n, Date.now());
    this.depthChanged(expiredItems > 0 ? 'DEADLINE_EXCEEDED' : undefined, expiredItems);
    if (live.length === 0) return false;

    let items = 0;
    for (const e of live) items += e.request.items;
    // One fresh buffer per input (it is transferred to the worker, so it cannot be pooled here);
    // each request's slab is copied once with set(), never item by item.
    const buffers = this.opts.spec.inputs.map((t, i) => {
      const rowLength = this.rowLengths[i]!;
      const batch = allocate(t.type, items * rowLength);
      let offset = 0;
      for (const e of live) {
        const slab = e.request.inputs[t.name]!;
        (batch as Float32Array).set(slab as Float32Array, offset);
        offset += slab.length;
      }
      return batch.buffer as ArrayBuffer;
    });

    const dispatchedAt = performance.now();
    const batch: InFlightBatch = {
      id: this.nextBatchId++,
      entries: live,
      items,
      queueWaitMs: live.map((e) => dispatchedAt - e.enqueuedAt),
      state: 'running',
    };
    const done = this.opts.executor.run(this.name, items, buffers).then(
      (out) => this.complete(batch, out),
      (err: unknown) => this.fail(batch, err),
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return true;
  }

  /** Stops the timer and rejects everything still queued (in-flight batches finish). */
  close(err: InferenceError): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const dropped = this.queue.rejectAll(err);
    if (dropped > 0) this.depthChanged(err.code, dropped);
  }

  /** Resolves when every batch already handed to a worker has been answered. */
  async drained(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private complete(batch: InFlightBatch, out: RunOutput): void {
    const { spec } = this.opts;
    const outputs: TensorData[] = [];
    const rowLengths: number[] = [];
    for (let o = 0; o < spec.outputs.length; o++) {
      const t = spec.outputs[o]!;
      const got = out.outputs[o];
      if (!got || got.dims[0] !== batch.items) {
        this.fail(batch, new Error(`output ${t.name} has dims [${got?.dims ?? []}] for a batch of ${batch.items} items: not batched along dimension 0`));
        return;
      }
      outputs.push(over(t.type, got.buffer));
      rowLengths.push(got.dims.slice(1).reduce((a, b) => a * b, 1));
    }

    batch.state = 'done';
    this.opts.reporter?.batch(this.name, { batchSize: batch.items, requests: batch.entries.length, queueWaitMs: batch.queueWaitMs, computeMs: out.computeMs, failed: false });
    // Each request gets views of its rows: the batch's output buffer is shared, never copied.
    let row = 0;
    batch.entries.forEach((e, i) => {
      const mine: Record<string, TensorData> = {};
      for (let o = 0; o < spec.outputs.length; o++) {
        const len = rowLengths[o]!;
        mine[spec.outputs[o]!.name] = outputs[o]!.subarray(row * len, (row + e.request.items) * len);
      }
      row += e.request.items;
      e.resolve({ outputs: mine, batchSize: batch.items, queueWaitMs: batch.queueWaitMs[i]!, computeMs: out.computeMs });
    });
  }

  private fail(batch: InFlightBatch, err: unknown): void {
    batch.state = 'failed';
    const reason = err instanceof Error ? err.message : String(err);
    const error = err instanceof InferenceError && err.code !== 'MODEL_FAILED' ? err : new InferenceError('MODEL_FAILED', `model ${this.name}: batch ${batch.id} of ${batch.items} items failed: ${reason}`);
    this.opts.reporter?.batch(this.name, { batchSize: batch.items, requests: batch.entries.length, queueWaitMs: batch.queueWaitMs, computeMs: 0, failed: true });
    this.opts.reporter?.rejected(this.name, error.code, batch.items);
    for (const e of batch.entries) e.reject(error);
  }

  /** undefined when valid, else what is wrong (named, for the BAD_REQUEST message). */
  private validate(r: InferenceRequest): string | undefined {
    if (!Number.isInteger(r.items) || r.items < 1) return `items must be a positive integer, got ${r.items}`;
    if (r.items > this.queue.maxItems) return `${r.items} items can never fit maxQueueItems ${this.queue.maxItems}`;
    if (r.inputs === null || typeof r.inputs !== 'object') return 'inputs missing';
    const { inputs } = this.opts.spec;
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i]!;
      const data = r.inputs[t.name];
      if (data === undefined) return `input ${t.name} missing`;
      if (!isType(t.type, data)) return `input ${t.name} must be a ${t.type === 'float32' ? 'Float32Array' : 'BigInt64Array'}, got ${(data as object)?.constructor?.name ?? typeof data}`;
      const expected = r.items * this.rowLengths[i]!;
      if (data.length !== expected) return `input ${t.name} has ${data.length} values, expected ${expected} (${r.items} items x [${t.itemShape}])`;
    }
    for (const name of Object.keys(r.inputs)) if (!this.inputNames.has(name)) return `unknown input ${name}`;
    return undefined;
  }

  private refuse(code: InferenceError['code'], items: number, message: string): Promise<never> {
    this.opts.reporter?.rejected(this.name, code, items);
    return Promise.reject(new InferenceError(code, message));
  }

  /** Reports the new depth (and any items dropped from the queue with `code`). */
  private depthChanged(code?: InferenceError['code'], items = 0): void {
    if (code && items > 0) this.opts.reporter?.rejected(this.name, code, items);
    this.opts.reporter?.queueDepth(this.name, this.queue.items);
    this.opts.onDepth(this.queue.items);
  }

  private arm(ms: number): void {
    // One timer per model is enough: the due time only moves later as the oldest request leaves.
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.opts.wake();
    }, Math.max(1, Math.ceil(ms)));
  }
}
