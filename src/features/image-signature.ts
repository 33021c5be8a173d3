/**
 * A tiny colour-layout signature of an image (4x4 RGB = 48 floats) and a fixed random projection
 * of it into the hashed feature space. Stand-in for an ONNX image encoder: crude, but it makes
 * "mostly red product shots" close to each other and far from "mostly blue" ones.
 */
import sharp from 'sharp';
import { RejectedRecordError, errorMessage } from '../errors.js';

export const SIGNATURE_GRID = 4;
export const SIGNATURE_LENGTH = SIGNATURE_GRID * SIGNATURE_GRID * 3;

const ACCEPTED_FORMATS: ReadonlySet<string> = new Set(['jpeg', 'png', 'webp']);

/**
 * Checks magic bytes before sharp sees the buffer, so SVG/XML, TIFF, GIF, PDF... never reach their
 * (larger, riskier) decoders at all. metadata().format is still checked afterwards.
 */
function sniffFormat(data: Buffer): 'jpeg' | 'png' | 'webp' | null {
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (
    data.length >= 8 &&
    data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47 &&
    data[4] === 0x0d && data[5] === 0x0a && data[6] === 0x1a && data[7] === 0x0a
  ) {
    return 'png';
  }
  if (
    data.length >= 12 &&
    data.toString('latin1', 0, 4) === 'RIFF' &&
    data.toString('latin1', 8, 12) === 'WEBP'
  ) {
    return 'webp';
  }
  return null;
}

function describeHead(data: Buffer): string {
  return data.subarray(0, 8).toString('hex');
}

/**
 * Decodes a JPEG/PNG/WebP and returns its 4x4 RGB thumbnail as 48 floats in [-0.5, 0.5]
 * (centred so that colour differences, not overall brightness, dominate cosine similarity).
 * Throws RejectedRecordError('IMAGE_UNREADABLE') for any other format, a corrupt or truncated
 * file, or one whose declared size exceeds opts.maxPixels.
 */
export async function imageSignature(
  data: Buffer,
  opts: { maxPixels: number },
): Promise<Float32Array> {
  // sharp reads limitInputPixels 0/false as "no limit": never let a bad setting turn it off.
  if (!(Number.isFinite(opts.maxPixels) && opts.maxPixels >= 1)) {
    throw new RangeError(`maxPixels must be a positive number, got ${opts.maxPixels}`);
  }
  if (data.length === 0) {
    throw new RejectedRecordError('IMAGE_UNREADABLE', 'Image is empty (0 bytes)');
  }
  const sniffed = sniffFormat(data);
  if (sniffed === null) {
    throw new RejectedRecordError(
      'IMAGE_UNREADABLE',
      `Image is not JPEG, PNG or WebP (${data.length} bytes, first bytes ${describeHead(data)})`,
    );
  }

  let width: number | undefined;
  let height: number | undefined;
  try {
    // Header only, no pixel decode. Read without the pixel limit so an oversized image is
    // rejected below with its dimensions in the message, not sharp's bare "exceeds pixel limit".
    const meta = await sharp(data, { limitInputPixels: false, failOn: 'error' }).metadata();
    const format = meta.format as string | undefined;
    if (format === undefined || !ACCEPTED_FORMATS.has(format)) {
      throw new RejectedRecordError(
        'IMAGE_UNREADABLE',
        `Image format ${format ?? 'unknown'} is not accepted (JPEG, PNG or WebP only)`,
      );
    }
    width = meta.width;
    height = meta.height;
    if (!(width > 0 && height > 0)) {
      throw new RejectedRecordError(
        'IMAGE_UNREADABLE',
        `${format} image declares no usable dimensions (${width}x${height})`,
      );
    }
    // Reject from the header, before any pixel is decoded, with the numbers in the message.
    if (width * height > opts.maxPixels) {
      throw new RejectedRecordError(
        'IMAGE_UNREADABLE',
        `${format} image is ${width}x${height} = ${width * height} pixels, over the limit of ${opts.maxPixels}`,
      );
    }

    // failOn 'error' also rejects truncated files; limitInputPixels guards the decode itself.
    const { data: px, info } = await sharp(data, { limitInputPixels: opts.maxPixels, failOn: 'error' })
      .autoOrient() // phone photos: compare what people see, not the sensor's orientation
      .resize(SIGNATURE_GRID, SIGNATURE_GRID, { fit: 'fill' })
      .removeAlpha()
      .toColourspace('srgb') // greyscale and CMYK inputs also give 3 sRGB channels
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });

    const channels = info.channels;
    if (info.width * info.height !== SIGNATURE_GRID * SIGNATURE_GRID || channels < 1) {
      throw new Error(`unexpected thumbnail ${info.width}x${info.height}x${channels}`);
    }
    const sig = new Float32Array(SIGNATURE_LENGTH);
    const scale = 1 / 255;
    for (let p = 0; p < SIGNATURE_GRID * SIGNATURE_GRID; p++) {
      for (let c = 0; c < 3; c++) {
        // A single-channel result (should not happen after toColourspace) is read as grey.
        const v = px[p * channels + (channels >= 3 ? c : 0)]!;
        sig[p * 3 + c] = v * scale - 0.5;
      }
    }
    return sig;
  } catch (err) {
    if (err instanceof RejectedRecordError) throw err;
    const dims = width !== undefined ? `, ${width}x${height}` : '';
    throw new RejectedRecordError(
      'IMAGE_UNREADABLE',
      `Could not decode ${sniffed} image (${data.length} bytes${dims}): ${errorMessage(err)}`,
    );
  }
}

// Projection matrices, one per output dimension, built on first use. Row j (dim rows) holds the
// 48 weights of output j: each output is one contiguous dot product and one store (about 4x
// faster in V8 than 48 passes of read-modify-write over the output).
const projections = new Map<number, Float32Array>();
const PROJECTION_SEED = 0x1b873593;

function projectionFor(dim: number): Float32Array {
  let m = projections.get(dim);
  if (m !== undefined) return m;
  m = new Float32Array(SIGNATURE_LENGTH * dim);
  const w = 1 / Math.sqrt(SIGNATURE_LENGTH);
  // mulberry32: fixed seed, so every process builds the same matrix (vectors stay comparable).
  let state = (PROJECTION_SEED ^ dim) >>> 0;
  for (let k = 0; k < m.length; k++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t = (t ^ (t >>> 14)) >>> 0;
    m[k] = (t & 1) === 0 ? w : -w;
  }
  projections.set(dim, m);
  return m;
}

/**
 * Adds a fixed ±1/sqrt(48) random projection of sig (48 floats) into out[offset .. offset+dim).
 * Random sign projections roughly preserve angles (Johnson-Lindenstrauss), so images similar by
 * signature stay similar in the feature space.
 */
export function projectSignature(
  sig: Float32Array,
  out: Float32Array,
  offset: number,
  dim: number,
): void {
  if (sig.length !== SIGNATURE_LENGTH) {
    throw new RangeError(`image signature has ${sig.length} values, expected ${SIGNATURE_LENGTH}`);
  }
  const m = projectionFor(dim);
  for (let j = 0, row = 0; j < dim; j++, row += SIGNATURE_LENGTH) {
    let acc = 0;
    for (let i = 0; i < SIGNATURE_LENGTH; i++) acc += sig[i]! * m[row + i]!;
    out[offset + j]! += acc;
  }
}
