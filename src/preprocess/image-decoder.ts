/**
 * Image bytes -> the tensor an image encoder expects. sharp decodes on libuv's thread pool, so the
 * event loop only does the final normalisation loop. Only JPEG, PNG and WebP are accepted, and the
 * pixel count is checked from the header before any pixel is decoded (decompression bombs).
 */
import sharp from 'sharp';
import { RejectedRecordError, errorMessage } from '../domain/errors.js';

/** fill: the whole image squeezed to size x size (aspect not kept); center-crop: shorter side to size, then the centre. */
export const IMAGE_RESIZES = ['fill', 'center-crop'] as const;
export type ImageResize = (typeof IMAGE_RESIZES)[number];

export interface ImagePreprocessing {
  /** Square input side the model expects. */
  readonly size: number;
  /** How an image becomes size x size; absent: fill. */
  readonly resize?: ImageResize;
  readonly layout: 'NCHW' | 'NHWC';
  /** Per channel (R, G, B), applied as (x / 255 - mean) / std. */
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

export type ImageFormat = 'jpeg' | 'png' | 'webp';
const ACCEPTED_FORMATS: ReadonlySet<string> = new Set<ImageFormat>(['jpeg', 'png', 'webp']);

/**
 * Magic bytes first, so SVG/XML, TIFF, GIF, PDF... never reach their (larger, riskier) decoders.
 * metadata().format is still checked afterwards.
 */
export function sniffImageFormat(data: Buffer): ImageFormat | null {
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (data.length >= 8 && data.readUInt32BE(0) === 0x89504e47 && data.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (data.length >= 12 && data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  return null;
}

/**
 * Decodes and resizes (filling, or centre-cropping) to size x size sRGB, 8 bits per channel, interleaved RGB. Every failure is a
 * RejectedRecordError('IMAGE_UNREADABLE') that says what was wrong.
 */
export async function decodeRgb(data: Buffer, size: number, maxPixels: number, resize: ImageResize = 'fill'): Promise<Buffer> {
  if (data.length === 0) throw new RejectedRecordError('IMAGE_UNREADABLE', 'image is empty (0 bytes)');
  const sniffed = sniffImageFormat(data);
  if (sniffed === null) {
    throw new RejectedRecordError('IMAGE_UNREADABLE', `image is not JPEG, PNG or WebP (${data.length} bytes, first bytes ${data.subarray(0, 8).toString('hex')})`);
  }
  let dims = '';
  try {
    // Header only. Read without the pixel limit so an oversized image is refused below with its
    // dimensions in the message, not sharp's bare "exceeds pixel limit".
    const meta = await sharp(data, { limitInputPixels: false, failOn: 'error' }).metadata();
    const format = meta.format as string | undefined;
    if (format === undefined || !ACCEPTED_FORMATS.has(format)) {
      throw new RejectedRecordError('IMAGE_UNREADABLE', `image format ${format ?? 'unknown'} is not accepted (JPEG, PNG or WebP only)`);
    }
    const { width, height } = meta;
    dims = `, ${width}x${height}`;
    if (!(width > 0 && height > 0)) throw new RejectedRecordError('IMAGE_UNREADABLE', `${format} image declares no usable dimensions (${width}x${height})`);
    if (width * height > maxPixels) {
      throw new RejectedRecordError('IMAGE_UNREADABLE', `${format} image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
    }
    // failOn 'error' also rejects truncated files; limitInputPixels guards the decode itself.
    const { data: px, info } = await sharp(data, { limitInputPixels: maxPixels, failOn: 'error' })
      .autoOrient() // phone photos: encode what people see, not the sensor's orientation
      // cover + centre: the shorter side becomes size and the longer one is cropped around the middle.
      .resize(size, size, resize === 'fill' ? { fit: 'fill' } : { fit: 'cover', position: 'centre' })
      .removeAlpha()
      .toColourspace('srgb') // greyscale and CMYK inputs also give 3 sRGB channels
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== 3) {
      throw new Error(`decoder returned ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
    }
    return px;
  } catch (err) {
    if (err instanceof RejectedRecordError) throw err;
    throw new RejectedRecordError('IMAGE_UNREADABLE', `could not decode ${sniffed} image (${data.length} bytes${dims}): ${errorMessage(err)}`);
  }
}

/** Writes interleaved RGB bytes as a normalised float tensor of one image at out[offset...]. */
export function rgbToTensor(px: Uint8Array, p: ImagePreprocessing, out: Float32Array, offset: number): void {
  const n = p.size * p.size;
  // Precomputed per channel: (x/255 - mean)/std = x*scale + shift.
  const s0 = 1 / (255 * p.std[0]), s1 = 1 / (255 * p.std[1]), s2 = 1 / (255 * p.std[2]);
  const b0 = -p.mean[0] / p.std[0], b1 = -p.mean[1] / p.std[1], b2 = -p.mean[2] / p.std[2];
  if (p.layout === 'NCHW') {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[offset + i] = px[j]! * s0 + b0;
      out[offset + n + i] = px[j + 1]! * s1 + b1;
      out[offset + 2 * n + i] = px[j + 2]! * s2 + b2;
    }
  } else {
    for (let j = 0; j < 3 * n; j += 3) {
      out[offset + j] = px[j]! * s0 + b0;
      out[offset + j + 1] = px[j + 1]! * s1 + b1;
      out[offset + j + 2] = px[j + 2]! * s2 + b2;
    }
  }
}
