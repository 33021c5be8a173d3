/**
 * Training examples as the trainer holds them: the served features packed into two Float32Arrays
 * (one row of F values per example), labels and event times beside them, so an epoch walks typed
 * arrays only. Records come from the `training-examples` topic or a file exported from it
 * (schemas/training-example.avsc).
 */

/** A record of schemas/training-example.avsc, as decoded (the fields the trainer uses). */
export interface TrainingExampleRecord {
  readonly exampleId: string;
  readonly userId: string;
  readonly adId: string;
  readonly servedAt: number;
  readonly label: number;
  readonly interest: ArrayLike<number>;
  readonly ad: ArrayLike<number>;
}

export interface ExampleSet {
  /** F: the width of an interest and an ad vector. */
  readonly dim: number;
  readonly size: number;
  /** [size, dim] row-major. */
  readonly interests: Float32Array;
  /** [size, dim] row-major. */
  readonly ads: Float32Array;
  /** 0 or 1 per example. */
  readonly labels: Uint8Array;
  /** Event time of the impression, ms since epoch. */
  readonly servedAt: Float64Array;
}

/** What packing skipped, so the report can say so. */
export interface PackReport {
  readonly duplicates: number;
}

/**
 * Packs records into an ExampleSet. A re-delivered example (same exampleId: the topic is
 * at-least-once) is kept once. Every record must have vectors of one width and a 0/1 label:
 * anything else is an error that names the record, since training on it would be silently wrong.
 */
export function packExamples(records: Iterable<TrainingExampleRecord>): { set: ExampleSet; report: PackReport } {
  const seen = new Set<string>();
  const kept: TrainingExampleRecord[] = [];
  let duplicates = 0;
  let dim = -1;
  for (const r of records) {
    if (seen.has(r.exampleId)) {
      duplicates++;
      continue;
    }
    seen.add(r.exampleId);
    const where = `training example ${JSON.stringify(r.exampleId)}`;
    if (dim < 0) dim = r.interest.length;
    if (dim < 2 || r.interest.length !== dim || r.ad.length !== dim) throw new Error(`${where}: interest and ad must both have ${dim} values, got ${r.interest.length} and ${r.ad.length}`);
    if (r.label !== 0 && r.label !== 1) throw new Error(`${where}: label must be 0 or 1, got ${String(r.label)}`);
    if (!Number.isFinite(r.servedAt)) throw new Error(`${where}: servedAt must be a time in ms, got ${String(r.servedAt)}`);
    kept.push(r);
  }
  if (kept.length === 0) throw new Error('no training examples');
  const n = kept.length;
  const set: ExampleSet = { dim, size: n, interests: new Float32Array(n * dim), ads: new Float32Array(n * dim), labels: new Uint8Array(n), servedAt: new Float64Array(n) };
  kept.forEach((r, i) => {
    set.interests.set(r.interest, i * dim);
    set.ads.set(r.ad, i * dim);
    set.labels[i] = r.label;
    set.servedAt[i] = r.servedAt;
  });
  for (const v of [set.interests, set.ads]) if (!v.every(Number.isFinite)) throw new Error('training examples hold a non-finite vector value');
  return { set, report: { duplicates } };
}

/** The examples at `rows`, in that order. */
export function subset(set: ExampleSet, rows: ArrayLike<number>): ExampleSet {
  const { dim } = set;
  const n = rows.length;
  const out: ExampleSet = { dim, size: n, interests: new Float32Array(n * dim), ads: new Float32Array(n * dim), labels: new Uint8Array(n), servedAt: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    out.interests.set(set.interests.subarray(r * dim, (r + 1) * dim), i * dim);
    out.ads.set(set.ads.subarray(r * dim, (r + 1) * dim), i * dim);
    out.labels[i] = set.labels[r]!;
    out.servedAt[i] = set.servedAt[r]!;
  }
  return out;
}

export interface TimeSplit {
  readonly train: ExampleSet;
  readonly validation: ExampleSet;
  /** Validation holds the examples served at or after this time. */
  readonly boundary: number;
}

/**
 * Train on the past, validate on the future: the latest `validationShare` of the examples by
 * event time are the validation set, as a model trained today is judged on tomorrow's traffic (a
 * random split would leak a user's later behaviour into training). Examples served at the same ms
 * as the boundary all go to validation, so no time is on both sides.
 */
export function splitByTime(set: ExampleSet, validationShare: number): TimeSplit {
  if (!(validationShare > 0 && validationShare < 1)) throw new Error(`validation share must be in (0, 1), got ${validationShare}`);
  const order = Array.from({ length: set.size }, (_, i) => i).sort((a, b) => set.servedAt[a]! - set.servedAt[b]! || a - b);
  const at = Math.min(set.size - 1, Math.max(1, Math.round(set.size * (1 - validationShare))));
  const boundary = set.servedAt[order[at]!]!;
  let cut = at;
  while (cut > 0 && set.servedAt[order[cut - 1]!]! === boundary) cut--;
  if (cut === 0) throw new Error('cannot split by time: every example has the same servedAt');
  return { train: subset(set, order.slice(0, cut)), validation: subset(set, order.slice(cut)), boundary };
}

/** First and last servedAt of a set. */
export function timeRange(set: ExampleSet): { from: number; to: number } {
  let from = Infinity;
  let to = -Infinity;
  for (const t of set.servedAt) {
    if (t < from) from = t;
    if (t > to) to = t;
  }
  return { from, to };
}
