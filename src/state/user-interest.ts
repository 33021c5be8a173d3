/**
 * A user's interest: a decayed sum of the embeddings of what they touched. Decay runs on event time,
 * not wall-clock time, so a replay of the same events gives the same vector.
 */
export interface UserInterest {
  readonly vector: Float32Array;
  /** Event time (ms) the vector is decayed to. */
  asOf: number;
  /** Events applied so far. */
  events: number;
}

export function newInterest(dim: number): UserInterest {
  return { vector: new Float32Array(dim), asOf: Number.NEGATIVE_INFINITY, events: 0 };
}

/**
 * Adds `weight * embedding[offset..offset+blockDim)` into the vector's block at `blockOffset`, at
 * event time `t`, after decaying the whole vector to t. The vector holds one block per modality;
 * by default the block is the whole vector. A late event (t before asOf) is decayed by its own
 * age instead of rewinding the vector.
 */
export function applyEvent(
  interest: UserInterest,
  embedding: Float32Array,
  offset: number,
  weight: number,
  t: number,
  halfLifeMs: number,
  blockOffset = 0,
  blockDim = interest.vector.length - blockOffset,
): void {
  const v = interest.vector;
  const dim = v.length;
  let w = weight;
  if (t >= interest.asOf) {
    if (interest.events > 0) {
      const keep = Math.pow(2, -(t - interest.asOf) / halfLifeMs);
      if (keep !== 1) for (let i = 0; i < dim; i++) v[i]! *= keep;
    }
    interest.asOf = t;
  } else {
    w *= Math.pow(2, -(interest.asOf - t) / halfLifeMs);
  }
  for (let i = 0; i < blockDim; i++) v[blockOffset + i]! += w * embedding[offset + i]!;
  interest.events++;
}
