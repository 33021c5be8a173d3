/**
 * Copies of interest vectors for state snapshots (the changelog's state changes), carved out of
 * shared slabs. A snapshot is read after the synchronous run that takes it (encoded for the
 * changelog when the chunk is delivered, read back by the local store until acknowledged), so it
 * cannot share the live vectors, which later events change and the pool hands to other users.
 * A standalone Float32Array per vector costs an ArrayBuffer backing store each (malloc, external
 * memory the GC must track); a view into a slab costs a small heap object.
 *
 * Slabs are never reused: one is freed by the GC once no snapshot views it. Snapshots are taken
 * in time order and most live only until their changelog record is acknowledged, so the live ones
 * sit in the last slab or two; one held long keeps at most its slab (SLAB_FLOATS floats) alive.
 */
const SLAB_FLOATS = 16 * 1024;

export class SnapshotArena {
  private slab = new Float32Array(0);
  private used = 0;

  /** A copy of v that nothing else writes to. */
  copy(v: Float32Array): Float32Array {
    const n = v.length;
    if (this.used + n > this.slab.length) {
      // A vector wider than a slab gets a slab of its own.
      this.slab = new Float32Array(Math.max(SLAB_FLOATS, n));
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    out.set(v);
    return out;
  }
}
