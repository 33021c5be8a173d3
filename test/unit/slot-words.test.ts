/** Index slots read and written through the int64 tensors' 32-bit words (src/util/slot-words.ts). */
import { describe, expect, it } from 'vitest';
import { setSlot, slotAt, slotWords } from '../../src/util/slot-words.js';

describe('slot words', () => {
  it('read the slots an int64 tensor holds, -1 included, and write ones its BigInt reads return', () => {
    const slots = BigInt64Array.of(0n, 5n, -1n, 2147483647n, 123456n);
    const words = slotWords(slots.subarray(1));
    expect([0, 1, 2, 3].map((j) => slotAt(words, j))).toEqual([5, -1, 2147483647, 123456]);
    const out = new BigInt64Array(4).fill(-1n);
    const w = slotWords(out);
    setSlot(w, 0, 7);
    setSlot(w, 2, 2147483647);
    setSlot(w, 3, 0);
    setSlot(w, 3, -1);
    expect(Array.from(out)).toEqual([7n, -1n, 2147483647n, -1n]);
  });
});
