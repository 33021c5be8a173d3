/**
 * Reads the tensors of a legacy (pre-1.6, non-zip) torch.save file without PyTorch. The format is
 * four pickles (magic number, protocol, system info, the saved object with tensor storages as
 * persistent ids), a fifth pickle listing the storage keys, then each storage in that order: its
 * element count (int64 little-endian) and raw little-endian elements. Only what a state dict
 * needs is understood: an OrderedDict of tensors rebuilt by torch._utils._rebuild_tensor_v2 from
 * Float and Long storages; anything else is refused by name, never executed.
 */

export interface TorchTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

interface Global {
  readonly global: string;
}
interface StorageRef {
  readonly storage: string;
  readonly dtype: 'float32' | 'int64';
}
interface TensorRef {
  readonly tensorOf: StorageRef;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}
type Value = null | boolean | number | bigint | string | Value[] | Map<Value, Value> | Global | StorageRef | TensorRef | { readonly tuple: readonly Value[] } | typeof MARK;
const MARK = Symbol('mark');
const STORAGE_TYPES: Readonly<Record<string, StorageRef['dtype']>> = { 'torch FloatStorage': 'float32', 'torch LongStorage': 'int64' };

/** One pickle from `buf` at `pos`: its value and where the next byte is. */
function unpickle(buf: Buffer, start: number): { value: Value; end: number } {
  let pos = start;
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  const popMark = (): Value[] => {
    const items: Value[] = [];
    for (;;) {
      const v = stack.pop();
      if (v === undefined) throw new Error('pickle: MARK missing');
      if (v === MARK) return items.reverse();
      items.push(v);
    }
  };
  const tupleItems = (v: Value): readonly Value[] => {
    if (typeof v === 'object' && v !== null && 'tuple' in v) return v.tuple;
    throw new Error('pickle: expected a tuple');
  };
  const line = (): string => {
    const nl = buf.indexOf(0x0a, pos);
    const s = buf.toString('latin1', pos, nl);
    pos = nl + 1;
    return s;
  };
  for (;;) {
    const op = buf[pos++];
    switch (op) {
      case 0x80: pos++; break; // PROTO
      case 0x2e: return { value: stack.pop()!, end: pos }; // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(buf[pos++]!); break; // BININT1
      case 0x4d: stack.push(buf.readUInt16LE(pos)); pos += 2; break; // BININT2
      case 0x4a: stack.push(buf.readInt32LE(pos)); pos += 4; break; // BININT
      case 0x8a: { // LONG1
        const n = buf[pos++]!;
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i]!);
        if (n > 0 && buf[pos + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        stack.push(v);
        break;
      }
      case 0x47: stack.push(buf.readDoubleBE(pos)); pos += 8; break; // BINFLOAT
      case 0x58: { const n = buf.readUInt32LE(pos); stack.push(buf.toString('utf8', pos + 4, pos + 4 + n)); pos += 4 + n; break; } // BINUNICODE
      case 0x8c: { const n = buf[pos]!; stack.push(buf.toString('utf8', pos + 1, pos + 1 + n)); pos += 1 + n; break; } // SHORT_BINUNICODE
      case 0x71: memo.set(buf[pos++]!, stack[stack.length - 1]!); break; // BINPUT
      case 0x72: memo.set(buf.readUInt32LE(pos), stack[stack.length - 1]!); pos += 4; break; // LONG_BINPUT
      case 0x68: stack.push(memo.get(buf[pos++]!)!); break; // BINGET
      case 0x6a: stack.push(memo.get(buf.readUInt32LE(pos))!); pos += 4; break; // LONG_BINGET
      case 0x29: stack.push({ tuple: [] }); break; // EMPTY_TUPLE
      case 0x74: stack.push({ tuple: popMark() }); break; // TUPLE
      case 0x85: stack.push({ tuple: stack.splice(-1) }); break; // TUPLE1
      case 0x86: stack.push({ tuple: stack.splice(-2) }); break; // TUPLE2
      case 0x87: stack.push({ tuple: stack.splice(-3) }); break; // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x61: { const v = stack.pop()!; (stack[stack.length - 1] as Value[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); (stack[stack.length - 1] as Value[]).push(...items); break; } // APPENDS
      case 0x73: { const v = stack.pop()!; const k = stack.pop()!; (stack[stack.length - 1] as Map<Value, Value>).set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = stack[stack.length - 1] as Map<Value, Value>;
        for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
        break;
      }
      case 0x63: { const module = line(); const name = line(); stack.push({ global: `${module} ${name}` }); break; } // GLOBAL
      case 0x62: stack.pop(); break; // BUILD: a state dict's _metadata (versions per module), not needed
      case 0x51: { // BINPERSID: ('storage', storage type, key, location, numel, view metadata)
        const [kind, type, key] = tupleItems(stack.pop()!);
        const dtype = STORAGE_TYPES[(type as Global).global];
        if (kind !== 'storage' || dtype === undefined) throw new Error(`torch file: unsupported persistent id ${String(kind)} ${(type as Global)?.global}`);
        stack.push({ storage: key as string, dtype });
        break;
      }
      case 0x52: { // REDUCE
        const args = tupleItems(stack.pop()!);
        const fn = (stack.pop() as Global).global;
        if (fn === 'collections OrderedDict') stack.push(new Map());
        else if (fn === 'torch._utils _rebuild_tensor_v2') {
          const [storage, offset, shape, stride] = args;
          stack.push({ tensorOf: storage as StorageRef, offset: offset as number, shape: tupleItems(shape!) as number[], stride: tupleItems(stride!) as number[] });
        } else throw new Error(`torch file: refusing to call ${fn}`);
        break;
      }
      default:
        throw new Error(`pickle: opcode 0x${(op ?? 0).toString(16)} at byte ${pos - 1} is not supported`);
    }
  }
}

/** The tensors of a legacy torch.save'd state dict, by name, each contiguous. */
export function readLegacyStateDict(file: Buffer): Map<string, TorchTensor> {
  let pos = 0;
  const next = (): Value => {
    const r = unpickle(file, pos);
    pos = r.end;
    return r.value;
  };
  if (next() !== LEGACY_MAGIC) throw new Error('not a legacy torch.save file (magic number differs; a zip-format file needs another reader)');
  if (next() !== LEGACY_PROTOCOL) throw new Error('torch file: unknown protocol version');
  next(); // system info: little endian, type sizes
  const dict = next();
  if (!(dict instanceof Map)) throw new Error('torch file: the saved object is not a state dict');
  const keys = next() as string[];
  const storages = new Map<string, Buffer>();
  for (const key of keys) {
    const count = Number(file.readBigInt64LE(pos));
    pos += 8;
    // The element width is the storage type's, known from the tensors that use it.
    const dtype = [...dict.values()].map((v) => (v as TensorRef).tensorOf).find((s) => s?.storage === key)?.dtype ?? 'float32';
    const bytes = count * (dtype === 'int64' ? 8 : 4);
    storages.set(key, file.subarray(pos, pos + bytes));
    pos += bytes;
  }
  const out = new Map<string, TorchTensor>();
  for (const [name, v] of dict) {
    const t = v as TensorRef;
    const raw = storages.get(t.tensorOf.storage);
    if (typeof name !== 'string' || !raw) throw new Error(`torch file: entry ${String(name)} is not a tensor of a listed storage`);
    const n = t.shape.reduce((x, y) => x * y, 1);
    const width = t.tensorOf.dtype === 'int64' ? 8 : 4;
    // Gathered into row-major order: tensors converted from TensorFlow keep its strides (a conv
    // weight [out, in, h, w] stored channels-last), and the file's bytes need not be aligned.
    const data = t.tensorOf.dtype === 'int64' ? new BigInt64Array(n) : new Float32Array(n);
    const index = new Array<number>(t.shape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let at = t.offset;
      for (let d = 0; d < index.length; d++) at += index[d]! * t.stride[d]!;
      if ((at + 1) * width > raw.length) throw new Error(`torch file: tensor ${name} reads past its storage`);
      if (data instanceof BigInt64Array) data[i] = raw.readBigInt64LE(at * width);
      else data[i] = raw.readFloatLE(at * width);
      for (let d = index.length - 1; d >= 0; d--) {
        if (++index[d]! < t.shape[d]!) break;
        index[d] = 0;
      }
    }
    out.set(name, { shape: t.shape, data });
  }
  return out;
}
