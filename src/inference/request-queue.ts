/**
 * The pending requests of one model, oldest first (Triton's per-model queue). Bounded in items, not
 * requests, because items are what cost memory and compute: a full queue refuses instead of growing.
 * The queue never decides when to send; batch-policy does, from what `sizes` and `oldestEnqueuedAt` say.
 */
import { InferenceError, type InferenceRequest, type InferenceResult } from './types.js';

export interface QueueEntry {
  readonly request: InferenceRequest;
  /** performance.now() at enqueue: the clock of queue waits and of the policy. */
  readonly enqueuedAt: number;
  /** Date.now()-based like InferenceRequest.deadline; Infinity when the request has none. */
  readonly deadline: number;
  readonly resolve: (result: InferenceResult) => void;
  readonly reject: (err: InferenceError) => void;
}

export class RequestQueue {
  // Two parallel arrays so the policy reads sizes without touching (or allocating) entries.
  private readonly entries: QueueEntry[] = [];
  private readonly itemCounts: number[] = [];
  private total = 0;

  constructor(readonly maxItems: number) {}

  /** Items queued, all requests together. */
  get items(): number {
    return this.total;
  }

  get length(): number {
    return this.entries.length;
  }

  /** Items of each queued request, oldest first (read-only view, no copy). */
  get sizes(): readonly number[] {
    return this.itemCounts;
  }

  /** NaN when empty, so any comparison with it is false. */
  get oldestEnqueuedAt(): number {
    return this.entries.length > 0 ? this.entries[0]!.enqueuedAt : Number.NaN;
  }

  /** Whether `items` more would fit under the bound. */
  fits(items: number): boolean {
    return this.total + items <= this.maxItems;
  }

  /** Appends; the caller checks `fits` first (the bound is the caller's answer to give: QUEUE_FULL). */
  push(entry: QueueEntry): void {
    this.entries.push(entry);
    this.itemCounts.push(entry.request.items);
    this.total += entry.request.items;
  }

  /**
   * Removes the n oldest requests and returns those still within their deadline; the expired ones
   * are rejected with DEADLINE_EXCEEDED here, so they are never sent.
   */
  take(n: number, nowEpochMs: number): { live: QueueEntry[]; expiredItems: number } {
    const taken = this.entries.splice(0, n);
    this.itemCounts.splice(0, n);
    let expiredItems = 0;
    const live: QueueEntry[] = [];
    for (const e of taken) {
      this.total -= e.request.items;
      if (e.deadline <= nowEpochMs) {
        expiredItems += e.request.items;
        e.reject(deadlineError(e, nowEpochMs));
      } else {
        live.push(e);
      }
    }
    return { live, expiredItems };
  }

  /** Drops every expired request anywhere in the queue (rejecting it); returns the items freed. */
  removeExpired(nowEpochMs: number): number {
    let freed = 0;
    let w = 0;
    for (let r = 0; r < this.entries.length; r++) {
      const e = this.entries[r]!;
      if (e.deadline <= nowEpochMs) {
        freed += e.request.items;
        e.reject(deadlineError(e, nowEpochMs));
      } else {
        this.entries[w] = e;
        this.itemCounts[w] = e.request.items;
        w++;
      }
    }
    this.entries.length = w;
    this.itemCounts.length = w;
    this.total -= freed;
    return freed;
  }

  /** Empties the queue, rejecting every request with `err` (engine closing). Returns the items dropped. */
  rejectAll(err: InferenceError): number {
    const dropped = this.total;
    const all = this.entries.splice(0);
    this.itemCounts.length = 0;
    this.total = 0;
    for (const e of all) e.reject(err);
    return dropped;
  }
}

function deadlineError(e: QueueEntry, nowEpochMs: number): InferenceError {
  return new InferenceError('DEADLINE_EXCEEDED', `deadline passed ${Math.round(nowEpochMs - e.deadline)} ms before the request could be sent`);
}
