import type { InputRecord } from '../../domain/events.js';
import type { DeadLetterOutput, ProcessResult } from '../../domain/outputs.js';
import type { ProcessorMetrics } from '../../metrics/processor-metrics.js';
import type { ChangelogMarker, PartitionState } from './partition-state.js';
import type { Deliverable, KafkaSink } from './sink.js';

export interface DeliveryDeps {
  readonly sink: Pick<KafkaSink, 'deliver' | 'deliverFor'>;
  readonly partitionState: Pick<PartitionState, 'appliedMarker' | 'markApplied'>;
  readonly metrics: ProcessorMetrics;
  /** Users held in memory now (a gauge set after each delivery). */
  readonly usersInMemory: () => number;
  /** Told what the broker acknowledged: each chunk's, each flush's and the catalog's dead letters. */
  readonly onDelivered?: (result: Deliverable) => void;
}

/** The output side: results to Kafka, then the metrics and the listener told what was acknowledged. */
export class Delivery {
  constructor(private readonly o: DeliveryDeps) {}

  /**
   * A chunk's result with the applied-offset marker of each input topic it holds records of (its
   * last offset there); resolves once acknowledged, and only then may the chunk's offsets be
   * committed. `ends`: per topic, the chunk's last offset. Outputs too large for their topic go out
   * as dead letters of the chunk's records that produced them (see KafkaSink).
   */
  async chunk(records: readonly InputRecord[], result: ProcessResult, ends: readonly { readonly topic: string; readonly last: string }[]): Promise<void> {
    const { sink, partitionState, metrics } = this.o;
    const p0 = performance.now();
    const { partition } = records[0]!;
    // The attribution state before the applied markers, which come last on their partition.
    const markers = [...attributionMarkers(result), ...ends.map((e) => partitionState.appliedMarker(e.topic, partition, e.last))];
    const delivered = await sink.deliverFor(records, result, markers);
    for (const e of ends) partitionState.markApplied(e.topic, partition, e.last);
    metrics.stageDuration.observe({ stage: 'produce' }, (performance.now() - p0) / 1000);
    this.delivered(delivered);
  }

  /** A rate-limited flush's result (no inputs, no marker); resolves once acknowledged. */
  async flush(result: ProcessResult): Promise<void> {
    await this.o.sink.deliver(result, attributionMarkers(result));
    this.delivered(result);
  }

  /** Ads the catalog could not use, as dead letters. */
  async catalogRejects(rejected: DeadLetterOutput[]): Promise<void> {
    if (rejected.length === 0) return;
    await this.o.sink.deliver({ deadLetters: rejected });
    this.delivered({ deadLetters: rejected });
  }

  /** Counts what was acknowledged (end-to-end latency is measured here, at the ack). */
  readonly delivered = (result: Deliverable): void => {
    const { metrics } = this.o;
    const acked = Date.now();
    for (const o of result.scored ?? []) metrics.e2eLatency.observe(Math.max(0, acked - o.triggerEventTime) / 1000);
    metrics.scoredOut.inc(result.scored?.length ?? 0);
    for (const e of result.examples ?? []) metrics.attribution.examples.inc({ label: String(e.label) });
    for (const d of result.deadLetters ?? []) metrics.deadLetters.inc({ topic: d.source.topic, reason: d.reason });
    metrics.usersInMemory.set(this.o.usersInMemory());
    this.o.onDelivered?.(result);
  };
}

/** The result's attribution state records (keys start with NUL), as changelog markers. */
function attributionMarkers(result: Deliverable): ChangelogMarker[] {
  return (result.attribution ?? []).map((a) => ({ key: a.key, value: a.value, partition: a.partition }));
}
