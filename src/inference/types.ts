/**
 * The contract between the processor and the inference engine. Requests carry a few items (one
 * chunk's images, texts...) already packed into typed arrays; the engine merges requests into
 * micro-batches per model, runs them on worker threads, and hands each request views of its rows.
 */
export type TensorType = 'float32' | 'int64';
export type TensorData = Float32Array | BigInt64Array;

export interface TensorSpec {
  readonly name: string;
  readonly type: TensorType;
  /** Shape of one item, without the batch dimension: [3, 64, 64] for an image, [] for a scalar id. */
  readonly itemShape: readonly number[];
}

export interface BatcherSettings {
  /** Items per batch at most (Triton's max_batch_size). */
  readonly maxBatchSize: number;
  /** How long the oldest queued item may wait for a fuller batch (Triton's max_queue_delay). */
  readonly maxQueueDelayMs: number;
  /** Items queued at most; beyond it requests are refused (QUEUE_FULL) and pressure is signalled. */
  readonly maxQueueItems: number;
}

export interface ModelSpec {
  /** Key the processor uses: 'image', 'text', 'click', 'fusion', 'scorer', ... */
  readonly name: string;
  /** Path of the .onnx file. */
  readonly path: string;
  /** Inputs batched along dimension 0. */
  readonly inputs: readonly TensorSpec[];
  /** Outputs batched along dimension 0. */
  readonly outputs: readonly TensorSpec[];
  /** Inputs that are not batched but set once and reused by every batch (e.g. the ad matrix). */
  readonly residentInputs?: readonly { readonly name: string; readonly type: TensorType }[];
  readonly batcher: BatcherSettings;
}

export interface InferenceRequest {
  /** Items in this request (rows along dimension 0 of every input). */
  readonly items: number;
  /** One packed array per batched input: items * product(itemShape) values. */
  readonly inputs: Readonly<Record<string, TensorData>>;
  /** Absolute time (ms since epoch, Date.now()) after which the result is useless: not run. */
  readonly deadline?: number;
}

/** What the pipeline runs models on: the worker-thread engine in production. */
export interface Inference {
  infer(model: string, request: InferenceRequest): Promise<InferenceResult>;
}

export interface InferenceResult {
  /** Per output, this request's rows: views into the batch's output, not copies. */
  readonly outputs: Readonly<Record<string, TensorData>>;
  readonly batchSize: number;
  /** From enqueue to the batch being handed to a worker. */
  readonly queueWaitMs: number;
  /** The batch's run on the worker (session.run), as measured there. */
  readonly computeMs: number;
}

/** Error codes of the engine, so callers can count and dead-letter by code. */
export type InferenceErrorCode = 'QUEUE_FULL' | 'DEADLINE_EXCEEDED' | 'MODEL_FAILED' | 'ENGINE_CLOSED' | 'UNKNOWN_MODEL' | 'BAD_REQUEST';

export class InferenceError extends Error {
  override readonly name = 'InferenceError';
  constructor(
    readonly code: InferenceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What the engine reports per batch; the metrics module implements it (kept prom-free here). */
export interface InferenceReporter {
  batch(model: string, e: { batchSize: number; requests: number; queueWaitMs: readonly number[]; computeMs: number; failed: boolean }): void;
  queueDepth(model: string, items: number): void;
  rejected(model: string, code: InferenceErrorCode, items: number): void;
  provider(model: string, provider: string): void;
}
