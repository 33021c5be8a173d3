import type { AdCatalog } from '../catalog/ad-catalog.js';
import type { CatalogUpdater } from '../catalog/catalog-updater.js';
import type { EventKind } from '../domain/events.js';
import type { InferenceEngine } from '../inference/inference-engine.js';
import type { AvroCodec } from '../serde/avro-codec.js';
import type { AppliedOffsets } from '../state/applied-offsets.js';
import type { LocalStateStore } from '../state/local-state-store.js';
import type { UserStateCodec } from '../state/user-state-codec.js';
import type { UserStateStore } from '../state/user-state-store.js';
import type { ModalityBlocks, MultimodalEmbedder } from './embed.js';
import type { OutputEncoder } from './encode.js';
import type { FeedbackStage } from './feedback.js';
import type { Fuser } from './fuse.js';
import type { Processor } from './processor.js';

/**
 * The transport-agnostic core as an adapter drives it: the processor and its state, wired from
 * configuration by the composition root (src/app/assemble.ts).
 */
export interface Core {
  readonly processor: Processor;
  /** Ad feedback -> training examples, per partition (the processor's feedback stage). */
  readonly feedback?: FeedbackStage;
  /** Input offsets already reflected in the user state; the transport marks them as chunks are delivered. */
  readonly applied: AppliedOffsets;
  readonly catalogUpdater: CatalogUpdater<ModalityBlocks>;
  readonly catalog: AdCatalog;
  readonly embedder: MultimodalEmbedder;
  readonly fuser: Fuser;
  /** The users in memory (an LRU over `local`). */
  readonly users: UserStateStore;
  /** Every user of the owned partitions, on disk: written as the changelog is acknowledged, restored from it. */
  readonly local: LocalStateStore;
  /** User state <-> changelog records (the local store holds the same bytes). */
  readonly stateCodec: UserStateCodec;
  /** What user state vectors mean (encoders, fusion, F); the changelog records carry it. */
  readonly space: string;
  readonly engine: InferenceEngine;
  readonly codec: AvroCodec;
  readonly encoder: OutputEncoder;
  /** Input topic -> event kind. */
  readonly eventTopics: ReadonlyMap<string, EventKind>;
  /** Stops the inference workers and closes the local state store. */
  close(): Promise<void>;
}
