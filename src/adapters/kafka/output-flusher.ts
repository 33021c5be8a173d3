import type { ProcessResult } from '../../domain/outputs.js';
import type { Processor } from '../../pipeline/processor.js';
import type { KafkaSink } from './sink.js';
import { errorMessage } from '../../domain/errors.js';
import type { Logger } from '../../util/log.js';

export interface OutputFlusherDeps {
  readonly processor: Pick<Processor, 'flushDue'>;
  readonly sink: Pick<KafkaSink, 'deliver'>;
  /** EMIT_INTERVAL_MS; 0 or less: outputs are not rate-limited and nothing is flushed. */
  readonly emitIntervalMs: number;
  /** Called with what was delivered. */
  readonly delivered: (result: ProcessResult) => void;
  readonly log: Logger;
  /** Stops the processor for good. */
  readonly fail: (err: Error) => void;
  /** Partitions whose users this instance holds; absent (with `inTask`): one flush over every user. */
  readonly partitions?: () => readonly number[];
  /**
   * Runs a partition's flush as work of its task (PartitionTask.flush): `score` between two chunks
   * (a flush during a chunk would write that chunk's state changes to the changelog before the
   * chunk's applied-offset marker), its result sent by the task after the chunks before it (a
   * failed send resets the partition like a failed chunk). Resolves once sent.
   */
  readonly inTask?: (partition: number, score: () => Promise<ProcessResult | null>) => Promise<void>;
}

/**
 * Users whose output is rate-limited (EMIT_INTERVAL_MS) get it from here once their time comes: a
 * timer flushes what is due, one flush at a time (per partition, as work of the partition's task).
 */
export class OutputFlusher {
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: OutputFlusherDeps) {}

  /** The flush in flight, if any (a deletion waits for it: it may be delivering the user's state). */
  inFlight(): Promise<void> | null {
    return this.flushing;
  }

  /** Starts the timer (when outputs are rate-limited). */
  start(): void {
    if (this.o.emitIntervalMs <= 0) return;
    this.timer = setInterval(() => void this.flush(), Math.min(1000, Math.max(50, this.o.emitIntervalMs / 2)));
    this.timer.unref();
  }

  /** Stops the timer and flushes once more: rate-limited outputs still owed; their state is in the changelog either way. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    await this.flush();
  }

  flush(): Promise<void> {
    this.flushing ??= this.flushAll().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async flushAll(): Promise<void> {
    const { partitions, inTask } = this.o;
    if (!partitions || !inTask) return this.flushDue(undefined);
    await Promise.all(partitions().map((p) => inTask(p, () => this.score(p))));
  }

  /** What is due on the partition, or null (nothing due, or scoring failed: the users stay pending for the next tick). */
  private score(partition: number): Promise<ProcessResult | null> {
    return this.o.processor.flushDue(undefined, partition).then(
      (result) => (result.scored.length + result.stateChanges.length + result.segments.length + result.deletions.length + result.deadLetters.length > 0 ? result : null),
      (err: unknown) => {
        this.o.log.error('scoring rate-limited outputs failed; retried on the next tick', { err });
        return null;
      },
    );
  }

  /** Never rejects: a failure is logged, and a failed delivery stops the processor. */
  private flushDue(partition: number | undefined): Promise<void> {
    const { processor, sink, delivered, log, fail } = this.o;
    return processor
      .flushDue(undefined, partition)
      .then(
        (result) =>
          sink.deliver(result).then(
            () => delivered(result),
            (err: unknown) => {
              // Memory already counts these outputs as sent; the changelog still lists them as
              // pending. Only a restart (restore from the changelog) brings the two back together.
              log.error('delivering rate-limited outputs failed; stopping so a restart restores them from the changelog', { err });
              fail(new Error(`delivering rate-limited outputs failed: ${errorMessage(err)}`));
            },
          ),
        // Scoring failed before anything changed: the users stay pending for the next tick.
        (err: unknown) => log.error('scoring rate-limited outputs failed; retried on the next tick', { err }),
      );
  }
}
