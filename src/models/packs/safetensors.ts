/**
 * Reads a .safetensors file: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw little-endian data. Only F32 tensors are
 * returned (other dtypes, such as BERT's I64 position_ids buffer, are skipped).
 */
export interface SafeTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export function readSafetensors(file: Buffer): Map<string, SafeTensor> {
  const headerLength = Number(file.readBigUInt64LE(0));
  if (headerLength > file.length - 8) throw new Error('safetensors: header longer than the file');
  const header = JSON.parse(file.toString('utf8', 8, 8 + headerLength)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLength;
  const out = new Map<string, SafeTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || t.dtype !== 'F32') continue;
    const [start, end] = t.data_offsets;
    // Copied: the data need not be 4-byte aligned in the file.
    const bytes = Buffer.from(file.subarray(base + start, base + end));
    out.set(name, { shape: t.shape, data: new Float32Array(bytes.buffer, bytes.byteOffset, (end - start) / 4) });
  }
  return out;
}
