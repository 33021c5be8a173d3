/**
 * A small HDR-style latency histogram: log-linear buckets (each power of two split into 2^p linear
 * sub-buckets), so any recorded value is reported within a relative error of 2^-(p+1) (default p = 7:
 * under 0.4 %), in constant memory whatever the count. Values below `lowest` share the first
 * bucket (reported as `lowest` at most); the maximum and minimum are kept exactly.
 */
export class LogLinearHistogram {
  private readonly subBits: number;
  private readonly subCount: number;
  private readonly counts: Float64Array;
  private readonly lowest: number;
  private readonly maxExp: number;
  total = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  sum = 0;

  /**
   * @param lowest smallest value resolved (e.g. 0.01 ms); smaller values are counted in bucket 0
   * @param highest largest value resolved; larger ones go to the last bucket (max stays exact)
   * @param precisionBits p: relative error at most 2^-(p+1)
   */
  constructor(lowest = 0.01, highest = 3_600_000, precisionBits = 7) {
    if (!(lowest > 0) || !(highest > lowest)) throw new Error('histogram: need 0 < lowest < highest');
    this.lowest = lowest;
    this.subBits = precisionBits;
    this.subCount = 1 << precisionBits;
    this.maxExp = Math.ceil(Math.log2(highest / lowest)) + 1;
    this.counts = new Float64Array(this.maxExp * this.subCount + 1);
  }

  /** Bucket index of a value: exponent e = floor(log2(v/lowest)), then a linear slot within [2^e, 2^(e+1)). */
  private index(v: number): number {
    const r = v / this.lowest;
    if (!(r >= 1)) return 0;
    const e = Math.min(this.maxExp - 1, Math.floor(Math.log2(r)));
    const base = 2 ** e;
    const sub = Math.min(this.subCount - 1, Math.floor(((r - base) / base) * this.subCount));
    return 1 + e * this.subCount + sub;
  }

  /** The representative value of a bucket: its midpoint (so the error is at most half a slot each way). */
  private valueAt(i: number): number {
    if (i === 0) return this.lowest;
    const e = Math.floor((i - 1) / this.subCount);
    const sub = (i - 1) % this.subCount;
    const base = 2 ** e;
    return this.lowest * (base + ((sub + 0.5) / this.subCount) * base);
  }

  record(v: number, count = 1): void {
    if (!Number.isFinite(v)) return;
    this.counts[this.index(v)]! += count;
    this.total += count;
    this.sum += v * count;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Adds another histogram of the same shape. */
  merge(o: LogLinearHistogram): void {
    if (o.counts.length !== this.counts.length || o.lowest !== this.lowest) throw new Error('histogram: merging different shapes');
    for (let i = 0; i < o.counts.length; i++) this.counts[i]! += o.counts[i]!;
    this.total += o.total;
    this.sum += o.sum;
    this.min = Math.min(this.min, o.min);
    this.max = Math.max(this.max, o.max);
  }

  /** Nearest-rank percentile, q in [0, 1]; NaN when empty. Clamped to the exact min and max. */
  percentile(q: number): number {
    if (this.total === 0) return Number.NaN;
    if (q >= 1) return this.max;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, this.valueAt(i)));
    }
    return this.max;
  }

  mean(): number {
    return this.total === 0 ? Number.NaN : this.sum / this.total;
  }

  /** The usual latency summary, in the unit recorded (ms here), rounded to 0.01. */
  summary(): { count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number } {
    const r = (x: number): number => (Number.isFinite(x) ? Math.round(x * 100) / 100 : Number.NaN);
    return { count: this.total, p50: r(this.percentile(0.5)), p90: r(this.percentile(0.9)), p99: r(this.percentile(0.99)), p999: r(this.percentile(0.999)), max: r(this.max), mean: r(this.mean()) };
  }

  /** Relative error bound of a reported value (for values >= lowest). */
  get relativeError(): number {
    // A slot is base/subCount wide and holds values >= base; its midpoint is off by half a slot at most.
    return 1 / (2 * this.subCount);
  }
}
