/**
 * The legacy torch.save reader on a file written here byte by byte (no PyTorch): a state dict of
 * one strided tensor (as TensorFlow-converted weights are stored) comes back gathered in row-major
 * order, and a pickle that would call anything but the state dict's constructors is refused.
 */
import { describe, expect, it } from 'vitest';
import { readLegacyStateDict } from '../../src/models/packs/torch-legacy.js';

const op = (s: string): Buffer => Buffer.from(s, 'latin1');
const unicode = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  const n = Buffer.alloc(4);
  n.writeUInt32LE(b.length);
  return Buffer.concat([op('X'), n, b]);
};
const global = (module: string, name: string): Buffer => op(`c${module}\n${name}\n`);
const PROTO = Buffer.from([0x80, 2]);

/** A legacy file: magic, protocol, system info, `body` (the saved object), the storage keys, then storage k0 = `values`. */
function legacyFile(body: Buffer, values: number[]): Buffer {
  // LONG1 of 0x1950a86a20f9469cfc6c: ten bytes, little endian.
  const magicLong = Buffer.concat([Buffer.from([0x8a, 10]), Buffer.from('6cfc9c46f9206aa85019', 'hex'), op('.')]);
  const count = Buffer.alloc(8);
  count.writeBigInt64LE(BigInt(values.length));
  const data = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => data.writeFloatLE(v, 4 * i));
  return Buffer.concat([
    PROTO, magicLong,
    PROTO, op('M'), Buffer.from([0xe9, 0x03]), op('.'), // 1001
    PROTO, op('}.'),
    PROTO, body, op('.'),
    PROTO, op(']('), unicode('k0'), op('e.'),
    count, data,
  ]);
}

/** OrderedDict([('w', _rebuild_tensor_v2(storage k0, 0, (2, 3), (1, 2), False, ()))]) */
const stateDict = (callee = global('torch._utils', '_rebuild_tensor_v2')): Buffer =>
  Buffer.concat([
    global('collections', 'OrderedDict'), op(')R('), unicode('w'),
    callee, op('(('), unicode('storage'), global('torch', 'FloatStorage'), unicode('k0'), unicode('cpu'), op('K'), Buffer.from([6]), op('N'), op('tQ'),
    op('K'), Buffer.from([0]), op('(K'), Buffer.from([2]), op('K'), Buffer.from([3]), op('t(K'), Buffer.from([1]), op('K'), Buffer.from([2]), op('t'), Buffer.from([0x89]), op(')tR'),
    op('u'),
  ]);

describe('legacy torch.save reader', () => {
  it('gathers a strided tensor into row-major order', () => {
    const sd = readLegacyStateDict(legacyFile(stateDict(), [0, 1, 2, 3, 4, 5]));
    expect([...sd.keys()]).toEqual(['w']);
    expect(sd.get('w')!.shape).toEqual([2, 3]);
    // Element [i, j] sits at i * 1 + j * 2 in the storage.
    expect([...sd.get('w')!.data]).toEqual([0, 2, 4, 1, 3, 5]);
  });

  it('refuses to call anything else, and a file that is not a legacy torch file', () => {
    expect(() => readLegacyStateDict(legacyFile(stateDict(global('os', 'system')), [0, 1, 2, 3, 4, 5]))).toThrow(/refusing to call os system/);
    expect(() => readLegacyStateDict(Buffer.concat([PROTO, op('K'), Buffer.from([7]), op('.')]))).toThrow(/not a legacy torch.save file/);
  });
});
