/**
 * Interest vectors carved out of large shared buffers. A standalone Float32Array of 128 floats
 * costs about 190 bytes of heap and an ArrayBuffer backing store (a C++ object plus a malloc
 * block, ~380 bytes more of RSS) on top of its 512 bytes of data; a view into a slab costs ~96
 * bytes. With one vector per interest per user, that difference decides how many users fit.
 *
 * Freed slots are reused only after the current synchronous run of code (a microtask later): code
 * that still holds a state dropped a moment ago in the same run (the store evicting a user the
 * processor is folding events into) never sees its vector overwritten. Slabs are kept once
 * allocated; the store's byte bound limits how many are ever needed.
 */
export interface VectorAllocator {
  /** Width of every vector. */
  readonly dim: number;
  /** A zeroed vector of the pool's width. */
  alloc(): Float32Array;
  /** Gives a vector back; unknown vectors (not from this pool) and repeated frees are ignored. */
  free(v: Float32Array): void;
}

const SLAB_BYTES = 1 << 20;

export class VectorPool implements VectorAllocator {
  private readonly slabs: Float32Array[] = [];
  private readonly slabOf = new Map<ArrayBufferLike, number>();
  private readonly slotsPerSlab: number;
  /** Free slot ids (slab * slotsPerSlab + slot), reusable now. */
  private readonly ready: number[] = [];
  /** Freed in the current run of code; reusable after it. */
  private released: number[] = [];
  private used = new Uint8Array(0);
  private flushScheduled = false;

  constructor(readonly dim: number) {
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`vector width must be a positive integer, got ${dim}`);
    this.slotsPerSlab = Math.max(16, Math.floor(SLAB_BYTES / (4 * dim)));
  }

  alloc(): Float32Array {
    if (this.ready.length === 0) this.grow();
    const id = this.ready.pop()!;
    this.used[id] = 1;
    const slab = this.slabs[Math.floor(id / this.slotsPerSlab)]!;
    const at = (id % this.slotsPerSlab) * this.dim;
    const v = slab.subarray(at, at + this.dim);
    v.fill(0);
    return v;
  }

  free(v: Float32Array): void {
    const slab = this.slabOf.get(v.buffer);
    if (slab === undefined || v.length !== this.dim) return;
    const id = slab * this.slotsPerSlab + v.byteOffset / 4 / this.dim;
    if (this.used[id] !== 1) return;
    this.used[id] = 0;
    this.released.push(id);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        for (const r of this.released) this.ready.push(r);
        this.released = [];
      });
    }
  }

  /** Vectors handed out and not freed. */
  get inUse(): number {
    return this.slabs.length * this.slotsPerSlab - this.ready.length - this.released.length;
  }

  /** Bytes of all slabs (used or not). */
  get reservedBytes(): number {
    return this.slabs.length * this.slotsPerSlab * this.dim * 4;
  }

  private grow(): void {
    const slab = new Float32Array(this.slotsPerSlab * this.dim);
    const index = this.slabs.push(slab) - 1;
    this.slabOf.set(slab.buffer, index);
    const used = new Uint8Array(this.slabs.length * this.slotsPerSlab);
    used.set(this.used);
    this.used = used;
    // Highest first, so pop() hands out low slots first.
    for (let s = this.slotsPerSlab - 1; s >= 0; s--) this.ready.push(index * this.slotsPerSlab + s);
  }
}

/** Plain heap vectors, for code and tests that need no pool. */
export function heapAllocator(dim: number): VectorAllocator {
  return { dim, alloc: () => new Float32Array(dim), free: () => undefined };
}
