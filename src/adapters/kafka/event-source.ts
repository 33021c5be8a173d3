import type { InputRecord } from '../../domain/events.js';
import { PartitionTasks } from './partition-tasks.js';
import type { FetchControl, FetchedRecords, GroupConsumer } from './port.js';

/** Where a fetch goes: the task of its partition number (see PartitionTask.offer). */
export interface FetchSink {
  offer(fetched: FetchedRecords, control: FetchControl): Promise<void>;
}

export interface TaskFeedOptions {
  /** Subscribed to the event topics (see KafkaClient.groupConsumer). */
  readonly consumer: GroupConsumer;
  /** The task of a partition number. */
  readonly taskOf: (partition: number) => FetchSink;
  /** How often a handler waiting for its task heartbeats. Default 1 s. */
  readonly heartbeatMs?: number;
}

/**
 * Consumes the event topics in one consumer group and hands each fetch to the task of its
 * partition number. A handler returns once its task took the fetch's records into chunks (not
 * once they are acknowledged: the task marks them done then), so the consumer fetches on while
 * the task works, and its inbox holds at most what one fetch brought.
 */
export async function feedTasks(o: TaskFeedOptions): Promise<void> {
  const heartbeatMs = o.heartbeatMs ?? 1000;
  await o.consumer.run((fetched, control) => handOver(o.taskOf(fetched.partition), fetched, control, heartbeatMs));
}

/** Waits for the task to take the fetch, heartbeating meanwhile (a restore, a full pipeline), so the group keeps the member. */
async function handOver(task: FetchSink, f: FetchedRecords, c: FetchControl, heartbeatMs: number): Promise<void> {
  let taken = false;
  const handed = task.offer(f, c).then(() => void (taken = true));
  while (!taken) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([handed, new Promise<void>((r) => (timer = setTimeout(r, heartbeatMs)))]);
    clearTimeout(timer);
    // Revoked or stopping: what the task has not taken goes to the next fetch or owner.
    if (taken || !c.isActive()) return;
    await c.heartbeat();
  }
}

export interface EventSourceOptions {
  /** Subscribed to the event topics (see KafkaClient.groupConsumer). */
  readonly consumer: GroupConsumer;
  /** Records handled, delivered and acknowledged together before their offsets are marked done. */
  readonly chunkMaxRecords: number;
  /**
   * Resolves once the chunk's outputs are acknowledged; one chunk of a partition number at a time.
   * A rejection drops the chunks after it and fetches the partition again from the chunk's start.
   */
  readonly handle: (records: InputRecord[]) => Promise<void>;
  /** A promise while the partition's records must wait (a restore), else null. */
  readonly restoring?: (partition: number) => Promise<void> | null;
  /** Told, after each acknowledged chunk, how many records of the topic-partition are still behind it. */
  readonly onLag?: (topic: string, partition: number, lag: number) => void;
  /** Told of a failed chunk (it is handled again after `backoffMs`). */
  readonly onFailure?: (err: unknown, partition: number, backoffMs: number) => void;
}

/**
 * The event topics through a task per partition number (see PartitionTask) with one handler doing
 * a chunk's work and delivery: what the pass-through ceiling runs (loadtest/passthrough.ts), the
 * same chunking and commit pattern as the processor with nothing in the middle.
 */
export async function runEventSource(o: EventSourceOptions): Promise<PartitionTasks<null>> {
  const tasks = new PartitionTasks<null>({
    chunkMaxRecords: o.chunkMaxRecords,
    hooksOf: (partition) => ({
      process: async () => null,
      deliver: (records) => o.handle([...records]),
      restoring: () => o.restoring?.(partition) ?? null,
      reset: () => undefined, // nothing held
      rewind: (topic, offset) => o.consumer.seek(topic, partition, offset),
      acknowledged: (ends) => {
        for (const e of ends) o.onLag?.(e.topic, partition, Math.max(0, Number(e.highWatermark) - Number(e.last) - 1));
      },
      failed: (err, backoffMs) => o.onFailure?.(err, partition, backoffMs),
    }),
  });
  await feedTasks({ consumer: o.consumer, taskOf: (p) => tasks.taskOf(p) });
  return tasks;
}
