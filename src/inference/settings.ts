import type { SettingTable, SettingValues } from '../util/settings.js';

/** The inference engine: execution providers, workers and the micro-batcher. */
export const INFERENCE_SETTINGS = {
  executionProviders: { env: 'EXECUTION_PROVIDERS', kind: 'list', default: ['cpu'], values: ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml', 'qnn'], doc: 'onnxruntime execution providers to try in order, e.g. cuda,webgpu,cpu; a provider that cannot start is skipped (logged once).' },
  inferenceWorkers: { env: 'INFERENCE_WORKERS', kind: 'int', default: 0, min: 0, max: 256, doc: 'Worker threads running the models; 0 means one per CPU core.' },
  intraOpThreads: { env: 'INTRA_OP_THREADS', kind: 'int', default: 1, min: 1, max: 256, doc: 'onnxruntime threads inside one worker.' },
  maxBatchSize: { env: 'MAX_BATCH_SIZE', kind: 'int', default: 256, min: 1, max: 65536, doc: 'Items per inference batch at most (per model).' },
  maxQueueDelayMs: { env: 'MAX_QUEUE_DELAY_MS', kind: 'number', default: 0, min: 0, max: 10000, doc: 'How long a partial batch is held back for more requests although a worker is free (Triton\'s max_queue_delay). 0: never; a free worker takes the queue at once, and batches grow only while every worker is busy (the lowest latency; under load batches fill anyway). Above 0 only for models whose cost is per batch, not per item.' },
  maxQueueItems: { env: 'MAX_QUEUE_ITEMS', kind: 'int', default: 50000, min: 1, max: 10000000, doc: 'Items queued per model at most; consumption pauses above 80 % of it and resumes below 40 %. At least a chunk\'s largest inference request, CHUNK_MAX_RECORDS x INTERESTS_PER_USER items (the scorer\'s; checked at start: a larger request is refused for ever).' },
} as const satisfies SettingTable;

export type InferenceSettings = SettingValues<typeof INFERENCE_SETTINGS>;
