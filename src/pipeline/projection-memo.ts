/**
 * The concat projection's output for recently seen input rows, found by the row's bits: events of
 * one product (its click, its image) and ads sharing a creative or a category project the same
 * row again and again, and a projection is F x width multiply-adds (16,384 at 128 x 128), while
 * hashing and comparing the row is 2 x width integer operations. Two-way set-associative: a row's
 * bits pick a set of two places, a new row replaces the one of the two used less recently. A hit is
 * checked bit for bit against the row kept, so what it returns is exactly what projecting again
 * would give.
 */
export class ProjectionMemo {
  /** The rows kept, as their bits (compared exactly: -0 and 0, NaN payloads stay apart). */
  private readonly rows: Int32Array;
  /** Per place, the projection of its row (float64 sums, before normalising). */
  private readonly outputs: Float64Array;
  private readonly filled: Uint8Array;
  /** Per set, which of its two places was used last. */
  private readonly recent: Uint8Array;
  private readonly setMask: number;

  /** `places`: rounded down to a power of two, at least 2 (0 or 1: keeps nothing). */
  constructor(
    private readonly width: number,
    private readonly outDim: number,
    places: number,
  ) {
    const n = places >= 2 ? 2 ** Math.floor(Math.log2(places)) : 0;
    this.setMask = n / 2 - 1;
    this.rows = new Int32Array(n * width);
    this.outputs = new Float64Array(n * outDim);
    this.filled = new Uint8Array(n);
    this.recent = new Uint8Array(n / 2);
  }

  get places(): number {
    return this.filled.length;
  }

  /** Copies the projection of row `at` of `bits` into `into` if the memo holds that row; false otherwise. */
  read(bits: Int32Array, at: number, into: Float64Array): boolean {
    if (this.setMask < 0) return false;
    const set = this.setOf(bits, at);
    for (let way = 0; way < 2; way++) {
      const place = 2 * set + way;
      if (!this.holds(place, bits, at)) continue;
      const { outputs, outDim: F } = this;
      for (let j = 0, from = place * F; j < F; j++) into[j] = outputs[from + j]!;
      this.recent[set] = way;
      return true;
    }
    return false;
  }

  /** Keeps row `at` of `bits` and its projection, in place of its set's less recently used row. */
  keep(bits: Int32Array, at: number, projected: Float64Array): void {
    if (this.setMask < 0) return;
    const set = this.setOf(bits, at);
    const way = 1 - this.recent[set]!;
    const place = 2 * set + way;
    const { rows, outputs, width: w, outDim: F } = this;
    for (let k = 0, to = place * w; k < w; k++) rows[to + k] = bits[at + k]!;
    for (let j = 0, to = place * F; j < F; j++) outputs[to + j] = projected[j]!;
    this.filled[place] = 1;
    this.recent[set] = way;
  }

  private setOf(bits: Int32Array, at: number): number {
    let h = 0x811c9dc5;
    for (let k = at; k < at + this.width; k++) h = Math.imul(h ^ bits[k]!, 0x01000193);
    // FNV's low bits mix poorly: fold the high half in before masking.
    return (h ^ (h >>> 15)) & this.setMask;
  }

  private holds(place: number, bits: Int32Array, at: number): boolean {
    if (this.filled[place] === 0) return false;
    const rows = this.rows;
    const w = this.width;
    const from = place * w;
    for (let k = 0; k < w; k++) if (rows[from + k] !== bits[at + k]) return false;
    return true;
  }
}
