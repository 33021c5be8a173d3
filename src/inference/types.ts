/**
 * The contract between the processor and the inference engine. Requests carry a few items (one
 * chunk's images, texts...) already packed into typed arrays; the engine merges requests into
 * micro-batches per model, runs them on worker threads, and hands each request views of its rows.
 */
import type { IndexQuantization } from './vector-index.js';

export type TensorType = 'float32' | 'int64';
export type TensorData = Float32Array | BigInt64Array;

/** The array each element type is held in. */
export interface TensorArrays {
  readonly float32: Float32Array;
  readonly int64: BigInt64Array;
}

/** A tensor as callers refer to it: its name in the graph (a user's model card may rename it) and its element type. */
export interface TensorDecl<T extends TensorType = TensorType> {
  readonly name: string;
  readonly type: T;
}

/** A model's tensors by role, e.g. { pixels: TensorDecl<'float32'> }. */
export type TensorDecls = { readonly [role: string]: TensorDecl };

/** One array per role, each of its declared type. */
export type TensorsOf<D extends TensorDecls> = { readonly [R in keyof D]: TensorArrays[D[R]['type']] };

/** A model's batched inputs and outputs by role. */
export interface ModelTensors<I extends TensorDecls = TensorDecls, O extends TensorDecls = TensorDecls> {
  readonly inputs: I;
  readonly outputs: O;
}

/** A model's tensors and the name the engine runs it under. */
export interface ModelIo<I extends TensorDecls = TensorDecls, O extends TensorDecls = TensorDecls> extends ModelTensors<I, O> {
  readonly model: string;
}

export interface TensorSpec {
  readonly name: string;
  readonly type: TensorType;
  /** Shape of one item, without the batch dimension: [3, 64, 64] for an image, [] for a scalar id. */
  readonly itemShape: readonly number[];
}

export interface BatcherSettings {
  /** Items per batch at most (Triton's max_batch_size). */
  readonly maxBatchSize: number;
  /** How long a partial batch is held for more requests though a worker is free (Triton's max_queue_delay); 0: sent at once (see batch-policy.ts). */
  readonly maxQueueDelayMs: number;
  /** Items queued at most; beyond it requests are refused (QUEUE_FULL) and pressure is signalled. */
  readonly maxQueueItems: number;
}

/**
 * A second model run inside the same request, on this model's top-k (one trip to the workers
 * instead of two; Triton calls such a chain an ensemble). For every item row q and each of its k
 * candidates j, the second model gets input `queryInput` = row q of this model's batched input
 * `queries`, and input `candidateInput` = row indices[q, j] of this model's resident input
 * `candidates`; its output `score` ([batch, 1]) comes back as this model's output `output`,
 * [batch, k]. The second model keeps its own spec (it is loaded, warmed and checked like any).
 */
export interface RerankSpec {
  readonly model: string;
  readonly queries: string;
  readonly candidates: string;
  /** This model's int64 output [batch, k] of candidate rows. */
  readonly indices: string;
  readonly queryInput: string;
  readonly candidateInput: string;
  readonly score: string;
  /** Listed among this model's outputs (float32), though its graph does not have it. */
  readonly output: string;
}

export interface ModelSpec {
  /** Key the processor uses: 'image', 'text', 'click', 'scorer', ... */
  readonly name: string;
  /** Path of the .onnx file. */
  readonly path: string;
  /** Inputs batched along dimension 0. */
  readonly inputs: readonly TensorSpec[];
  /** Outputs batched along dimension 0. */
  readonly outputs: readonly TensorSpec[];
  /** Inputs that are not batched but set once and reused by every batch (e.g. the ad matrix). */
  readonly residentInputs?: readonly { readonly name: string; readonly type: TensorType }[];
  /** The scorer's CTR re-rank in the same trip (see RerankSpec). */
  readonly rerank?: RerankSpec;
  /**
   * Set for a model that is no ONNX graph but an approximate nearest-neighbour index (see
   * IndexSpec): `path` is unused, and the re-rank's candidates are the index's own vectors.
   */
  readonly index?: IndexSpec;
  readonly batcher: BatcherSettings;
}

/**
 * A vector index run as a model: batched input `query` [batch, dim] -> outputs `scores` [batch, k]
 * (float32, inner products, descending) and `slots` [batch, k] (int64, -1 past what was found).
 * Its content arrives by InferenceEngine.updateIndex (add and remove by slot), not as a resident.
 */
export interface IndexSpec {
  readonly dim: number;
  readonly k: number;
  readonly connectivity: number;
  readonly expansionAdd: number;
  readonly expansionSearch: number;
  readonly quantization: IndexQuantization;
  readonly query: string;
  readonly scores: string;
  readonly slots: string;
  /**
   * Candidate pools: int64 input `pool` [batch, poolSize] of slots to score exactly instead of
   * searching (first value -1: search), and int64 output `found` [batch, poolSize], the top
   * poolSize slots of each searched row (poolSize >= k). A pooled row's k come from its pool only.
   */
  readonly pool: string;
  readonly found: string;
  readonly poolSize: number;
}

/** One change to an index: slots removed, then slots (re)set to rows of `vectors`. */
export interface IndexUpdate {
  readonly removed: Int32Array;
  readonly slots: Int32Array;
  readonly vectors: Float32Array;
}

/**
 * An index update for one worker only, with this many build threads (0: the library's choice):
 * a large index is built once and the other workers load the saved file, instead of each building
 * its own replica on one thread.
 */
export interface IndexWorker {
  readonly worker: number;
  readonly threads: number;
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

/** A request whose inputs are given by role (see inferTyped). */
export interface TypedRequest<I extends TensorDecls> {
  readonly items: number;
  readonly inputs: TensorsOf<I>;
  readonly deadline?: number;
}

/**
 * The typed way to call the port: inputs and outputs by role, as `io` declares them. Each output is
 * checked once here against its declared type, so call sites need no casts; the port itself stays
 * keyed by names, since a user's card decides them at run time.
 */
export async function inferTyped<I extends TensorDecls, O extends TensorDecls>(engine: Inference, io: ModelIo<I, O>, request: TypedRequest<I>): Promise<TensorsOf<O>> {
  const inputs: Record<string, TensorData> = {};
  for (const role in io.inputs) inputs[io.inputs[role]!.name] = request.inputs[role];
  const result = await engine.infer(io.model, request.deadline === undefined ? { items: request.items, inputs } : { items: request.items, inputs, deadline: request.deadline });
  const outputs: Record<string, TensorData> = {};
  for (const role in io.outputs) {
    const { name, type } = io.outputs[role]!;
    const data = result.outputs[name];
    if (!(type === 'float32' ? data instanceof Float32Array : data instanceof BigInt64Array)) throw new InferenceError('MODEL_FAILED', `model ${io.model} gave no ${type} output ${name}`);
    outputs[role] = data;
  }
  return outputs as TensorsOf<O>;
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
