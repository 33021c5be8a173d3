import type { InputRecord } from '../../domain/events.js';
import type { KafkaClient, PartitionRead } from './port.js';

export interface CatalogSourceOptions {
  readonly client: KafkaClient;
  readonly topic: string;
  /** Names the reader to the cluster; every instance reads the whole catalog. */
  readonly label: string;
  readonly apply: (records: InputRecord[]) => Promise<void>;
}

/**
 * Reads the compacted ad topic from the beginning and keeps following it, so catalog changes apply
 * hot. `caughtUp` resolves once everything present at start has been applied: scoring before that
 * would rank against a partial catalog.
 */
export function runCatalogSource(o: CatalogSourceOptions): Promise<PartitionRead> {
  return o.client.readFromBeginning({ topic: o.topic, follow: true, label: o.label, onRecords: o.apply });
}
