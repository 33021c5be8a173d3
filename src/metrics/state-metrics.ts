import { Counter, Gauge, type Registry } from 'prom-client';
import type { StateStoreReporter } from '../state/local-state-store.js';

/** What the store-bytes gauge reads at each scrape: the open partitions' local stores. */
export interface LocalStoreSizes {
  openPartitions(): number[];
  bytes(partition: number): number;
  users(partition: number): number;
}

/**
 * The user state's two tiers: look-ups answered by the in-memory cache or not, the local store's
 * disk reads and writes, and its size per partition.
 */
export class StateMetrics implements StateStoreReporter {
  readonly lookups: Counter<'result'>;
  readonly diskReadsTotal: Counter<'result'>;
  readonly diskWritesTotal: Counter;
  readonly storeBytes: Gauge<'partition'>;
  readonly storeUsers: Gauge<'partition'>;
  private sizes: LocalStoreSizes | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const sizes = (): LocalStoreSizes | undefined => this.sizes;
    this.lookups = new Counter({ name: 'adstream_state_cache_lookups_total', help: 'User state look-ups of the fold, by result: hit (in memory) or miss (read from the local store on disk, or a new user).', labelNames: ['result'], registers });
    this.diskReadsTotal = new Counter({ name: 'adstream_state_disk_reads_total', help: 'Users read from the local state store, by result: found or absent (a new user).', labelNames: ['result'], registers });
    this.diskWritesTotal = new Counter({ name: 'adstream_state_disk_writes_total', help: 'Records written to the local state store (acknowledged states, tombstones, markers; restores included).', registers });
    // Read at each scrape from the open partitions' stores.
    const perPartition = (name: string, help: string, read: (s: LocalStoreSizes, p: number) => number): Gauge<'partition'> =>
      new Gauge({
        name,
        help,
        labelNames: ['partition'],
        registers,
        collect() {
          this.reset();
          const s = sizes();
          for (const p of s?.openPartitions() ?? []) this.set({ partition: String(p) }, read(s!, p));
        },
      });
    this.storeBytes = perPartition('adstream_state_store_bytes', "Bytes of each open partition's local state store (its B+tree pages).", (s, p) => s.bytes(p));
    this.storeUsers = perPartition('adstream_state_store_users', "Users in each open partition's local state store.", (s, p) => s.users(p));
    for (const result of ['hit', 'miss']) this.lookups.inc({ result }, 0);
    for (const result of ['found', 'absent']) this.diskReadsTotal.inc({ result }, 0);
  }

  /** The local stores whose size the gauges report. */
  measure(sizes: LocalStoreSizes): void {
    this.sizes = sizes;
  }

  cacheLookup(hit: boolean): void {
    this.lookups.inc({ result: hit ? 'hit' : 'miss' });
  }

  diskRead(found: boolean): void {
    this.diskReadsTotal.inc({ result: found ? 'found' : 'absent' });
  }

  diskWrites(records: number): void {
    this.diskWritesTotal.inc(records);
  }
}
