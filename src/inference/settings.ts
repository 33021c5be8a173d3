import type { SettingTable, SettingValues } from '../util/settings.js';

/** The inference engine: execution providers, workers and the micro-batcher. */
export const INFERENCE_SETTINGS = {
  executionProviders: { env: 'EXECUTION_PROVIDERS', kind: 'list', default: ['cpu'], values: ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml', 'qnn'], doc: 'onnxruntime execution providers to try in order, e.g. cuda,webgpu,cpu; a provider that cannot start is skipped (logged once).' },
  inferenceWorkers: { env: 'INFERENCE_WORKERS', kind: 'int', default: 0, min: 0, max: 256, doc: 'Worker threads running the models; 0 means one per CPU core.' },
  intraOpThreads: { env: 'INTRA_OP_THREADS', kind: 'int', default: 1, min: 1, max: 256, doc: 'onnxruntime threads inside one worker.' },
  maxBatchSize: { env: 'MAX_BATCH_SIZE', kind: 'int', default: 256, min: 1, max: 65536, doc: 'Items per inference batch at most (per model).' },
  maxQueueDelayMs: { env: 'MAX_QUEUE_DELAY_MS', kind: 'number', default: 2, min: 0, max: 10000, doc: 'How long the oldest queued item may wait for a fuller batch.' },
  maxQueueItems: { env: 'MAX_QUEUE_ITEMS', kind: 'int', default: 50000, min: 1, max: 10000000, doc: 'Items queued per model at most; consumption pauses above 80 % of it and resumes below 40 %. At least a chunk\'s largest inference request, CHUNK_MAX_RECORDS x max(INTERESTS_PER_USER, 2 x TOP_K) items (checked at start: a larger request is refused for ever).' },
} as const satisfies SettingTable;

export type InferenceSettings = SettingValues<typeof INFERENCE_SETTINGS>;
