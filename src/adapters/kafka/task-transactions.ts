import type { ChangelogEntry } from '../../state/local-state-store.js';
import type { Logger } from '../../util/log.js';
import { changelogEntriesOf, checkpointsOf, type ChangelogWriter } from './changelog-tee.js';
import { ProducerFencedError, type Appended, type GroupConsumer, type KafkaProducer, type KafkaTransaction, type TopicRecords, type TransactionalProducer } from './port.js';

export interface TaskTransactionsOptions {
  readonly partition: number;
  /** The member of the consumer group whose offsets the transactions commit (it fetched them). */
  readonly consumer: () => GroupConsumer;
  readonly changelog: string;
  /** Where committed changelog records go (LocalStateStore.write). */
  readonly store: ChangelogWriter;
  /** A transaction is committed this long after it began. */
  readonly commitIntervalMs: number;
  /** Makes the partition's producer (transactional id `<group>-<partition>`). */
  readonly connect: () => Promise<TransactionalProducer>;
  /**
   * The close of the partition's previous transactions in this process (its task was revoked):
   * nothing connects before it settled, or that one's late init (a connect still retrying when it
   * was revoked) would fence this one's producer for good.
   */
  readonly after?: Promise<void>;
  /** The group's committed offsets of the partition's input topics (KafkaAdmin.committedOffsets). */
  readonly readCommitted: () => Promise<ReadonlyMap<string, bigint>>;
  readonly log: Logger;
}

/** A transaction's outcome: committed and its changelog records written to the store, or not. */
interface Outcome {
  readonly settled: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface Open {
  readonly tx: KafkaTransaction;
  /** Input topic -> the next offset to read: what the transaction commits for the group. */
  readonly offsets: Map<string, bigint>;
  /** Changelog records sent in it, per changelog partition, in order. */
  readonly entries: Map<number, ChangelogEntry[]>;
  /** Per changelog partition, past the first offset of its last batch (the store's checkpoint). */
  readonly next: Map<number, bigint>;
  readonly outcome: Outcome;
  /** A delivery in it failed: it is aborted, never committed. */
  failed: { readonly err: unknown } | null;
  readonly timer: NodeJS.Timeout;
}

function outcome(): Outcome {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const settled = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  settled.catch(() => undefined); // told through stored()
  return { settled, resolve, reject };
}

/**
 * The exactly-once output of one partition task (Kafka Streams' eos-v1 model): its own
 * transactional producer, whose deliveries go into one open transaction; COMMIT_INTERVAL_MS after
 * it began, the transaction waits for the delivery in flight, adds the input offsets of the chunks
 * delivered in it (sendOffsets with the consumer group) and commits. Only then are its changelog
 * records written to the local store, and only then does stored() resolve (the task marks offsets
 * done after it). A failed delivery, commit or fencing aborts the transaction: stored() rejects,
 * and the task drops later work, resets and rewinds to the last committed offsets. The store never
 * gets an aborted record. Where the task resumes (committed()) is read from the group after the
 * producer inited, since a commit whose answer was lost may have gone through.
 */
export class TaskTransactions {
  private producer: TransactionalProducer | null = null;
  private fenced: ProducerFencedError | null = null;
  private open: Open | null = null;
  /** The delivery running in the open transaction. */
  private inflight: Promise<unknown> = Promise.resolve();
  /** The end (commit or abort) under way: the next transaction begins after it. */
  private ending: Promise<void> | null = null;
  /** The outcome of the transaction the latest delivery went into. */
  private latest: Promise<void> = Promise.resolve();
  /** The open transaction being made: callers meanwhile (a delivery, committed()) share it. */
  private opening: Promise<Open> | null = null;
  /**
   * A transaction failed (aborted, or its commit failed): deliveries are refused until the task
   * read the committed offsets again (committed(), which it does once it recovered). A delivery
   * queued behind the failed transaction would otherwise go into the next one, whose offsets
   * (the next offset to read) would then cover the failed one's records: lost, their outputs
   * aborted.
   */
  private broken: { readonly err: unknown } | null = null;
  /** close() was called: no producer is made or begins any more. */
  private closing = false;
  private readonly closedOutcome = outcome();

  /** The sink's producer: sends into the open transaction (only within deliver()). */
  readonly sender: KafkaProducer = {
    send: (batches) => this.send(batches),
    disconnect: async () => undefined, // the task's close() disconnects
  };

  constructor(private readonly o: TaskTransactionsOptions) {}

  /**
   * Runs one delivery (a chunk's or a flush's sends through `sender`) in the open transaction,
   * beginning one if none is; `ends`: the chunk's last offset per input topic, committed with it.
   */
  async deliver(unit: () => Promise<void>, ends: readonly { readonly topic: string; readonly last: string }[]): Promise<void> {
    while (this.ending) await this.ending;
    if (this.broken) throw this.broken.err;
    const open = await this.opened();
    if (open.failed) throw open.failed.err; // the task drops what follows a failure anyway
    this.latest = open.outcome.settled;
    const run = unit();
    this.inflight = run.catch(() => undefined);
    try {
      await run;
    } catch (err) {
      open.failed = { err };
      void this.end(open);
      throw err;
    }
    for (const e of ends) open.offsets.set(e.topic, BigInt(e.last) + 1n);
  }

  /**
   * The group's committed offsets of the partition, stable: read after the producer began a
   * transaction, which inits it the first time (a fresh producer after a failure, a new owner):
   * initing completes any transaction an earlier producer of the id left pending (the broker
   * aborts it, or finishes its commit), and fences that producer. kafkajs cannot ask the broker
   * for stable offsets (require_stable) otherwise.
   */
  async committed(): Promise<ReadonlyMap<string, bigint>> {
    // The task reads them before its first chunk and once it recovered from a failure: what it
    // delivers next starts from them.
    this.broken = null;
    await this.opened();
    return this.o.readCommitted();
  }

  /** Resolves once the transaction of the latest delivery committed and its changelog records are in the store; rejects if it aborted. */
  stored(): Promise<void> {
    return this.latest;
  }

  /**
   * The task closes: the open transaction ends (committed on a shutdown, aborted when the
   * partition was revoked: its next owner replays from the last commit) and the producer goes.
   */
  async close(dropped: boolean): Promise<void> {
    this.closing = true;
    // A transaction being begun (a connect still retrying) ends like an open one.
    await this.opening?.catch(() => undefined);
    const open = this.open;
    if (open) {
      if (dropped) open.failed ??= { err: new Error('the partition was revoked') };
      await this.end(open);
    }
    while (this.ending) await this.ending;
    await this.producer?.disconnect().catch((err: unknown) => this.o.log.warn('disconnecting a transactional producer failed', { err, partition: this.o.partition }));
    this.producer = null;
    this.closedOutcome.resolve();
  }

  /** Resolves once close() finished: the producer is gone and nothing of it can begin again. */
  closed(): Promise<void> {
    return this.closedOutcome.settled;
  }

  /** The open transaction, begun if none is; one at a time (two producers of one id would fence each other). */
  private opened(): Promise<Open> {
    return (this.opening ??= this.open_().finally(() => (this.opening = null)));
  }

  private async open_(): Promise<Open> {
    while (this.ending) await this.ending;
    if (this.open) return this.open;
    // Once fenced, a newer owner of the partition exists: initing again would fence it in turn.
    if (this.fenced) throw this.fenced;
    if (!this.producer) {
      await this.o.after?.catch(() => undefined);
      if (this.closing) throw new Error('the task closed: no transaction begins');
      const producer = await this.o.connect();
      if (this.closing) {
        await producer.disconnect().catch(() => undefined);
        throw new Error('the task closed while its producer connected');
      }
      this.producer = producer;
    }
    let tx: KafkaTransaction;
    try {
      tx = await this.producer.begin();
    } catch (err) {
      await this.drop(err);
      throw err;
    }
    const open: Open = { tx, offsets: new Map(), entries: new Map(), next: new Map(), outcome: outcome(), failed: null, timer: setTimeout(() => void this.end(open), this.o.commitIntervalMs) };
    this.open = open;
    return open;
  }

  private async send(batches: readonly TopicRecords[]): Promise<Appended[]> {
    const open = this.open;
    if (!open) throw new Error('a transactional send outside a delivery');
    const appended = await open.tx.send(batches);
    changelogEntriesOf(batches, this.o.changelog, undefined, open.entries);
    checkpointsOf(appended, this.o.changelog, open.next);
    return appended;
  }

  /** Commits (or, after a failure, aborts) `open` once the delivery in it settled. */
  private end(open: Open): Promise<void> {
    if (this.open !== open) return this.ending ?? Promise.resolve();
    this.open = null;
    clearTimeout(open.timer);
    const ending = this.inflight.then(() => this.finish(open)).finally(() => {
      if (this.ending === ending) this.ending = null;
    });
    this.ending = ending;
    return ending;
  }

  private async finish(open: Open): Promise<void> {
    const { tx, outcome } = open;
    if (open.failed) {
      this.broken ??= open.failed;
      await tx.abort().catch((err: unknown) => this.drop(err));
      return outcome.reject(open.failed.err);
    }
    try {
      const offsets = [...open.offsets].map(([topic, next]) => ({ topic, partition: this.o.partition, offset: String(next) }));
      if (offsets.length > 0) await tx.sendOffsets(this.o.consumer(), offsets);
      await tx.commit();
    } catch (err) {
      this.broken ??= { err };
      await tx.abort().catch(() => undefined);
      await this.drop(err);
      return outcome.reject(err);
    }
    // Committed: the store may have the records now. Writes start in commit order; the next
    // transaction need not wait for them to commit.
    const writes = [...open.entries].map(([p, list]) => this.o.store.write(p, list, open.next.get(p)));
    void Promise.all(writes).then(() => outcome.resolve(), outcome.reject);
  }

  /** After a failed transaction the producer may be unusable: the next one starts fresh (unless fenced). */
  private async drop(err: unknown): Promise<void> {
    if (err instanceof ProducerFencedError) this.fenced = err;
    const producer = this.producer;
    this.producer = null;
    await producer?.disconnect().catch(() => undefined);
  }
}
