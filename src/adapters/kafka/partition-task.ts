import type { InputRecord } from '../../domain/events.js';
import type { FetchControl, FetchedRecords } from './port.js';

/** Chunks of one task processed ahead of their acknowledgement, at most (bounds memory per partition). */
export const PIPELINE_DEPTH = 3;
/** After a failed chunk the task waits this long, doubling per failure in a row, up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

/** Where a chunk ends on one input topic-partition: what is marked done once it is acknowledged. */
export interface TopicEnd {
  readonly topic: string;
  readonly last: string;
  /** Records of the topic in the chunk. */
  readonly records: number;
  /** The partition's end at the fetch the last record came in (for the lag). */
  readonly highWatermark: bigint;
  readonly control: FetchControl;
}

/** What the task does with its work; the Kafka adapter wires the core, the sink and the partition state in. */
export interface TaskHooks<R> {
  /** Processes a chunk: records in offset order per topic, in timestamp order across topics. */
  process(records: readonly InputRecord[], ends: readonly TopicEnd[]): Promise<R>;
  /**
   * Sends a result and resolves once it is acknowledged: a chunk's (`records` non-empty) or a
   * flush's (no records, no ends). Called one at a time, in the order the results were made.
   */
  deliver(records: readonly InputRecord[], result: R, ends: readonly TopicEnd[]): Promise<void>;
  /**
   * Resolves once what the deliveries so far handed to the local state store is written (rejects
   * if a write failed). Offsets are marked done only after it; the next delivery need not wait.
   * Absent: a delivery's store write is part of it.
   */
  stored?(): Promise<void>;
  /** The partition's restore in flight, if any: nothing is processed before it ends. */
  restoring(): Promise<void> | null;
  /**
   * Memory ran ahead of what the changelog holds (a chunk failed after others were processed on
   * its state): drop the partition's users and restore them (PartitionState.reset).
   */
  reset(): void;
  /** The topic-partition must be fetched again from `offset` (GroupConsumer.seek). */
  rewind(topic: string, offset: bigint): void;
  /**
   * exactly_once: the offsets the group committed for the partition's input topics, read once no
   * transaction of the partition is pending any more (its producer fenced any earlier one). The task
   * resumes there: before its first chunk (an earlier owner may have committed after this member
   * read the offsets it fetches from) and after a failure (a commit whose answer was lost may have
   * gone through). Absent: the task's own acknowledgements say where it resumes.
   */
  committed?(): Promise<ReadonlyMap<string, bigint>>;
  /** A chunk's outputs were acknowledged and its offsets marked done. */
  acknowledged?(ends: readonly TopicEnd[]): void;
  /** A chunk or its delivery failed: the task resets, rewinds and, after `backoffMs`, goes on. */
  failed?(err: unknown, backoffMs: number): void;
  /** Records waiting in the inbox, chunks not yet acknowledged: told on every change (a gauge). */
  depth?(inbox: number, unacknowledged: number): void;
  /** The task closed and its sends settled (`dropped`: revoked): what it holds for sending can go. */
  closed?(dropped: boolean): Promise<void>;
}

export interface PartitionTaskOptions<R> {
  readonly partition: number;
  readonly chunkMaxRecords: number;
  readonly hooks: TaskHooks<R>;
  /** Default PIPELINE_DEPTH. */
  readonly pipelineDepth?: number;
  /** Work of an earlier task of the partition (revoked, then assigned again) that must settle first. */
  readonly after?: Promise<void>;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A fetch in the inbox, taken record by record into chunks; `taken` resolves once all of it is. */
interface Queued {
  readonly records: readonly InputRecord[];
  next: number;
  readonly control: FetchControl;
  readonly highWatermark: bigint;
  readonly taken: () => void;
}

/** A unit of work not yet acknowledged: a chunk of records, or a rate-limited flush (no records). */
interface Work {
  readonly seq: number;
  readonly records: readonly InputRecord[];
  readonly ends: readonly TopicEnd[];
}

/**
 * The work of one partition number, as a Kafka Streams task runs it: the records of every
 * co-partitioned input topic (clicks, image views, reviews, deletions) go into one inbox, and
 * whatever waits there when the task is free becomes the next chunk (up to chunkMaxRecords): a
 * record that comes alone goes at once, a backlog goes in full chunks. A chunk is merged across
 * the topics by record timestamp, each topic in offset order, so a user's events keep their order.
 *
 * Pipelined: the next chunk is processed while the previous ones' outputs are being sent, at most
 * `pipelineDepth` unacknowledged. Sends go one after another, in the order the results were made,
 * so every output partition (the changelog with its applied-offset markers, scored, segments,
 * dead letters) gets them in that order whatever the producer does with concurrent requests; a
 * chunk's offsets are marked done once it and everything before it are acknowledged.
 *
 * A failed chunk (processing or delivery) fails everything after it too (processed on a state the
 * changelog does not hold): those are dropped unsent, the partition's state is reset, and every
 * input topic-partition is fetched again from its first record not acknowledged.
 */
export class PartitionTask<R> {
  readonly partition: number;
  private readonly hooks: TaskHooks<R>;
  private readonly depthLimit: number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Per input topic, fetches waiting to be taken, oldest first. */
  private readonly inbox = new Map<string, Queued[]>();
  private inboxRecords = 0;
  /** Per topic, the offset after the last record taken in: a fetch of records before it is a re-fetch (a rebalance, a consumer restart). */
  private position = new Map<string, bigint>();
  /** Per topic, the first offset taken in and not yet acknowledged: where a rewind goes back to. */
  private readonly firstUnacknowledged = new Map<string, bigint>();
  private readonly unacknowledged: Work[] = [];
  private readonly flushes: { readonly make: () => Promise<R | null>; readonly done: () => void }[] = [];
  /** The sends, one after another. */
  private sending: Promise<void>;
  /** After each send, in the same order: its store write awaited, then its offsets marked done. */
  private marking: Promise<void> = Promise.resolve();
  private seq = 0;
  /** Work from this sequence number on is dropped unsent (a failure, a revocation). */
  private dropFrom = Number.POSITIVE_INFINITY;
  private failure: { readonly seq: number; readonly err: unknown } | null = null;
  private failuresInARow = 0;
  /** hooks.committed must be read before the next chunk. */
  private unsynced: boolean;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly o: PartitionTaskOptions<R>) {
    this.partition = o.partition;
    this.hooks = o.hooks;
    this.depthLimit = Math.max(1, o.pipelineDepth ?? PIPELINE_DEPTH);
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.sending = (o.after ?? Promise.resolve()).catch(() => undefined);
    this.unsynced = o.hooks.committed !== undefined;
  }

  /** Records waiting in the inbox. */
  get queued(): number {
    return this.inboxRecords;
  }

  /** Chunks (and flushes) processed or processing, not yet acknowledged. */
  get inFlight(): number {
    return this.unacknowledged.length;
  }

  /**
   * Takes a fetch into the inbox; resolves once every record of it is in a chunk (or dropped: the
   * task closed, or reset and will have it fetched again). Records before the topic's position
   * were taken already and are skipped. Never rejects.
   */
  offer(f: FetchedRecords, control: FetchControl): Promise<void> {
    if (this.closed || f.records.length === 0 || !control.isActive()) return Promise.resolve();
    const at = this.position.get(f.topic);
    let start = 0;
    if (at !== undefined) while (start < f.records.length && BigInt(f.records[start]!.offset) < at) start++;
    if (start === f.records.length) return Promise.resolve();
    this.position.set(f.topic, BigInt(f.records[f.records.length - 1]!.offset) + 1n);
    if (!this.firstUnacknowledged.has(f.topic)) this.firstUnacknowledged.set(f.topic, BigInt(f.records[start]!.offset));
    let queue = this.inbox.get(f.topic);
    if (!queue) this.inbox.set(f.topic, (queue = []));
    const taken = new Promise<void>((resolve) => queue.push({ records: f.records, next: start, control, highWatermark: f.highWatermark, taken: resolve }));
    this.inboxRecords += f.records.length - start;
    this.report();
    this.wake();
    return taken;
  }

  /**
   * Runs `make` between two chunks (never during one) and sends what it returns after the
   * results before it; resolves once that is acknowledged, or dropped by a failure.
   */
  flush(make: () => Promise<R | null>): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((done) => {
      this.flushes.push({ make, done });
      this.wake();
    });
  }

  /**
   * Takes no more records; the work already processed is still sent. Resolves once every send
   * settled. `drop`: the partition was revoked: nothing more is sent either (its next owner
   * replays from the last commit; done() of a revoked partition does nothing anyway).
   */
  async close(drop = false): Promise<void> {
    this.closed = true;
    if (drop) this.dropFrom = -1;
    this.releaseInbox();
    for (const f of this.flushes.splice(0)) f.done();
    while (this.running) await this.running;
    await this.settled();
    await this.hooks.closed?.(drop);
  }

  /** The task's sends, settled (a later task of the partition waits for them). */
  settled(): Promise<void> {
    return this.sending.then(() => this.marking);
  }

  private wake(): void {
    this.running ??= this.run().finally(() => {
      this.running = null;
      if (this.hasWork()) this.wake();
    });
  }

  private hasWork(): boolean {
    if (this.closed) return false;
    if (this.failure) return true;
    return (this.inboxRecords > 0 || this.flushes.length > 0) && this.unacknowledged.length < this.depthLimit;
  }

  /** The task's turn: one unit of work after the other until there is none it may start. */
  private async run(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      if (this.failure) {
        await this.recover();
        continue;
      }
      if (this.unsynced) {
        await this.sync();
        continue;
      }
      const restore = this.hooks.restoring();
      if (restore) {
        await restore;
        continue;
      }
      if (this.unacknowledged.length >= this.depthLimit) return; // an acknowledgement wakes it
      const flush = this.flushes.shift();
      if (flush) {
        await this.runFlush(flush.make, flush.done);
        continue;
      }
      if (this.inboxRecords === 0) return;
      const work = this.takeChunk();
      let result: R;
      try {
        result = await this.hooks.process(work.records, work.ends);
      } catch (err) {
        this.dropFrom = Math.min(this.dropFrom, work.seq);
        this.failure ??= { seq: work.seq, err };
        continue;
      }
      this.send(work, result);
    }
  }

  private async runFlush(make: () => Promise<R | null>, done: () => void): Promise<void> {
    const result = await make().catch(() => null); // `make` reports its own failures
    if (result === null) return done();
    const work: Work = { seq: this.seq++, records: [], ends: [] };
    this.unacknowledged.push(work);
    this.report();
    this.send(work, result, done);
  }

  /** The next chunk: everything waiting, up to chunkMaxRecords, merged across topics by timestamp. */
  private takeChunk(): Work {
    const max = this.o.chunkMaxRecords;
    const records: InputRecord[] = [];
    const ends = new Map<string, { last: string; records: number; highWatermark: bigint; control: FetchControl }>();
    const heads: Queued[] = [];
    for (const queue of this.inbox.values()) if (queue.length > 0) heads.push(queue[0]!);
    while (records.length < max && heads.length > 0) {
      // The earliest head; ties go to the topic subscribed first (few topics: a scan beats a heap).
      let h = 0;
      for (let i = 1; i < heads.length; i++) if (heads[i]!.records[heads[i]!.next]!.timestamp < heads[h]!.records[heads[h]!.next]!.timestamp) h = i;
      const q = heads[h]!;
      const r = q.records[q.next++]!;
      records.push(r);
      const end = ends.get(r.topic);
      if (end) {
        end.last = r.offset;
        end.records++;
        end.highWatermark = q.highWatermark;
        end.control = q.control;
      } else ends.set(r.topic, { last: r.offset, records: 1, highWatermark: q.highWatermark, control: q.control });
      if (q.next < q.records.length) continue;
      // The fetch is all taken: its handler may return; the topic's next fetch takes its place.
      q.taken();
      const queue = this.inbox.get(r.topic)!;
      queue.shift();
      if (queue.length > 0) heads[h] = queue[0]!;
      else heads.splice(h, 1);
    }
    this.inboxRecords -= records.length;
    const work: Work = { seq: this.seq++, records, ends: [...ends].map(([topic, e]) => ({ topic, ...e })) };
    this.unacknowledged.push(work);
    this.report();
    return work;
  }

  /**
   * Queues the send of `work`'s result after the sends before it. Once the broker acknowledged it
   * the next send may go; its offsets are marked done after its store write (hooks.stored) and
   * after everything before it was marked.
   */
  private send(work: Work, result: R, sent?: () => void): void {
    const fail = (err: unknown): void => {
      // Nothing after it may go out: it was made on the state this one did not get to the changelog.
      if (work.seq < this.dropFrom) {
        this.dropFrom = work.seq;
        this.failure = { seq: work.seq, err };
      }
      this.wake();
    };
    // The write travels boxed: a promise returned from a then callback would be waited for.
    const delivered = this.sending.then(async (): Promise<{ readonly stored: Promise<void> | null } | null> => {
      if (work.seq >= this.dropFrom) return null;
      try {
        await this.hooks.deliver(work.records, result, work.ends);
      } catch (err) {
        fail(err);
        return null;
      }
      // Taken now, so that it covers this delivery's write and not later ones' only.
      return { stored: this.hooks.stored?.() ?? null };
    });
    this.sending = delivered.then(() => undefined);
    this.marking = Promise.all([this.marking, delivered]).then(async ([, outcome]) => {
      try {
        if (outcome === null) return;
        if (outcome.stored) {
          try {
            await outcome.stored;
          } catch (err) {
            fail(err);
            return;
          }
        }
        if (work.seq >= this.dropFrom) return; // revoked or failed meanwhile: not marked
        // Everything before it is acknowledged and stored too (both run in order): done up to its ends.
        for (const end of work.ends) {
          this.firstUnacknowledged.set(end.topic, BigInt(end.last) + 1n);
          await end.control.done(end.last);
        }
        this.failuresInARow = 0;
        if (this.unacknowledged[0] === work) this.unacknowledged.shift();
        this.report();
        if (work.ends.length > 0) this.hooks.acknowledged?.(work.ends);
        this.wake();
      } finally {
        sent?.();
      }
    });
  }

  /**
   * After a failure: the work from the failed one on is dropped unsent, the sends before it
   * settle, the state is reset and every topic rewound to its first record not acknowledged.
   */
  private async recover(): Promise<void> {
    let err: unknown;
    while (this.failure) {
      // A send before the failed one may fail while the others settle: the earliest counts.
      this.dropFrom = Math.min(this.dropFrom, this.failure.seq);
      err = this.failure.err;
      this.failure = null;
      await this.settled();
    }
    this.unacknowledged.length = 0;
    this.releaseInbox();
    this.hooks.reset();
    // Records from the rewind point on are taken again; those before it were acknowledged. A topic
    // with nothing taken past it needs no seek: its next fetch starts there anyway.
    const rewound = new Map(this.firstUnacknowledged);
    for (const [topic, offset] of rewound) if ((this.position.get(topic) ?? offset) > offset) this.hooks.rewind(topic, offset);
    this.position = rewound;
    this.report();
    this.unsynced = this.hooks.committed !== undefined;
    await this.backOff(err);
    this.dropFrom = Number.POSITIVE_INFINITY;
  }

  private async backOff(err: unknown): Promise<void> {
    const backoff = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** this.failuresInARow++);
    this.hooks.failed?.(err, backoff);
    await this.sleep(backoff);
  }

  /**
   * Resumes at the group's committed offsets where they are past what the task holds: the records
   * before them are skipped (taken in or fetched later), and the state is restored again, since
   * the changelog has what those transactions changed. A failed read is retried after a backoff.
   */
  private async sync(): Promise<void> {
    let committed: ReadonlyMap<string, bigint>;
    try {
      committed = await this.hooks.committed!();
    } catch (err) {
      await this.backOff(err);
      return;
    }
    this.unsynced = false;
    let skipped = false;
    for (const [topic, offset] of committed) {
      if ((this.position.get(topic) ?? -1n) < offset) this.position.set(topic, offset);
      const first = this.firstUnacknowledged.get(topic);
      if (first === undefined || first >= offset) continue;
      skipped = true;
      this.firstUnacknowledged.set(topic, offset);
      const queue = this.inbox.get(topic) ?? [];
      while (queue.length > 0) {
        const q = queue[0]!;
        while (q.next < q.records.length && BigInt(q.records[q.next]!.offset) < offset) {
          q.next++;
          this.inboxRecords--;
        }
        if (q.next < q.records.length) break;
        q.taken();
        queue.shift();
      }
    }
    if (!skipped) return;
    this.report();
    this.hooks.reset();
  }

  /** Drops what waits in the inbox (it is fetched again, or by the next owner) and lets its handlers return. */
  private releaseInbox(): void {
    for (const queue of this.inbox.values()) for (const q of queue.splice(0)) q.taken();
    this.inboxRecords = 0;
  }

  private report(): void {
    this.hooks.depth?.(this.inboxRecords, this.unacknowledged.length);
  }
}
