/**
 * Index slots travel as int64 tensors (BigInt64Array), but every slot is a small integer or -1.
 * Reading a BigInt64Array element makes a BigInt and writing one needs a BigInt, both heap
 * objects in V8: the main thread's per-candidate loops read and write the low 32-bit words through
 * an Int32Array view instead, so a slot costs no allocation.
 */

/** Where the low and high words of an int64 sit in an Int32Array view (the platform's byte order). */
const LOW = new Int32Array(BigInt64Array.of(1n).buffer)[0] === 1 ? 0 : 1;
const HIGH = 1 - LOW;

/** An Int32Array over the same bytes (two words per slot). */
export function slotWords(slots: BigInt64Array): Int32Array {
  return new Int32Array(slots.buffer, slots.byteOffset, slots.length * 2);
}

/** Slot `j` of the view: its value when 0 <= slot < 2^31, -1 for -1 (what an index writes past its hits). */
export function slotAt(words: Int32Array, j: number): number {
  return words[2 * j + LOW]!;
}

/** Writes slot `j` of the view (0 <= slot < 2^31, or -1). */
export function setSlot(words: Int32Array, j: number, slot: number): void {
  words[2 * j + LOW] = slot;
  words[2 * j + HIGH] = slot < 0 ? -1 : 0;
}
