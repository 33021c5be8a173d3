/**
 * The whole batching policy in one pure function (as Triton keeps it in one place): from the queue's
 * state and the clock it says "send the first n requests now", "wait N ms" or "nothing to do".
 * No timers, no I/O: the batcher acts on the answer, and tests call it with plain numbers.
 *
 * The contract: a worker is free -> the head batch goes at once, full or not; every worker is busy
 * -> nothing (requests keep queueing, and the next free worker takes the fuller batch). Batches
 * grow by load, not by waiting: a partial batch held while a worker idles only adds latency, since
 * the requests that would fill it are not expected sooner than the next free worker. The one
 * exception is opt-in: maxQueueDelayMs > 0 (Triton's max_queue_delay) holds a partial batch up to
 * that long though a worker is free, for models whose cost is per batch rather than per item.
 */

export interface PolicyInput {
  /** performance.now(), the same clock as `oldestEnqueuedAt`. */
  readonly now: number;
  /** Enqueue time of the oldest queued request; ignored when `sizes` is empty. */
  readonly oldestEnqueuedAt: number;
  /** Items queued, all requests together (the sum of `sizes`). */
  readonly totalItems: number;
  /** Items of each queued request, oldest first. */
  readonly sizes: ArrayLike<number>;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Whether a worker could take a batch right now (false: every worker is busy). */
  readonly workerFree: boolean;
}

export type BatchDecision =
  | { readonly action: 'send'; readonly requests: number }
  | { readonly action: 'wait'; readonly ms: number }
  | { readonly action: 'idle' };

const IDLE: BatchDecision = { action: 'idle' };

export function decideBatch(q: PolicyInput): BatchDecision {
  // Nothing queued, or nobody to run it: the next enqueue or the next free worker asks again, so
  // there is nothing to time.
  if (q.sizes.length === 0 || !q.workerFree) return IDLE;

  // The head batch: the longest prefix of requests that fits. Requests are never split, so a single
  // request above maxBatchSize forms a batch on its own (better run oversized than never).
  let n = 0;
  let items = 0;
  while (n < q.sizes.length && items + q.sizes[n]! <= q.maxBatchSize) items += q.sizes[n++]!;
  if (n === 0) return { action: 'send', requests: 1 };

  // Full (exactly maxBatchSize, or the next request does not fit): waiting cannot improve it.
  // No hold asked for: a free worker takes what there is.
  if (q.totalItems >= q.maxBatchSize || q.maxQueueDelayMs === 0) return { action: 'send', requests: n };

  // Opt-in hold: a partial batch waits for more requests, at most maxQueueDelayMs from its oldest.
  const waited = q.now - q.oldestEnqueuedAt;
  if (waited >= q.maxQueueDelayMs) return { action: 'send', requests: n };
  return { action: 'wait', ms: q.maxQueueDelayMs - waited };
}
