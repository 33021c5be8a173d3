import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { RejectedRecordError } from '../../src/domain/errors.js';
import { hash32 } from '../../src/preprocess/hash.js';
import { decodeRgb, rgbToTensor, sniffImageFormat, type ImagePreprocessing } from '../../src/preprocess/image-decoder.js';
import { tokenize } from '../../src/preprocess/text-tokens.js';

/** Deterministic PRNG so the tests do not flake. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Rgb = { r: number; g: number; b: number };

function solid(width: number, height: number, background: Rgb) {
  return sharp({ create: { width, height, channels: 3, background } });
}

/** A colour image with ±amp per-pixel noise, as PNG. */
async function noisyPng(colour: Rgb, amp: number, seed: number): Promise<Buffer> {
  const w = 32;
  const h = 32;
  const rand = rng(seed);
  const raw = Buffer.alloc(w * h * 3);
  const clamp = (x: number) => Math.max(0, Math.min(255, Math.round(x)));
  for (let p = 0; p < w * h; p++) {
    raw[p * 3] = clamp(colour.r + (rand() * 2 - 1) * amp);
    raw[p * 3 + 1] = clamp(colour.g + (rand() * 2 - 1) * amp);
    raw[p * 3 + 2] = clamp(colour.b + (rand() * 2 - 1) * amp);
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

async function expectUnreadable(p: Promise<unknown>, message?: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RejectedRecordError);
  expect((err as RejectedRecordError).reason).toBe('IMAGE_UNREADABLE');
  if (message) expect((err as Error).message).toMatch(message);
}

const RED = { r: 220, g: 20, b: 20 };
const MAX_PIXELS = 4_000_000;
/** Output side for decodeRgb in these tests. */
const SIZE = 8;

describe('tokenize', () => {
  it('lowercases English, drops stopwords and 1-char tokens, splits on punctuation', () => {
    expect(tokenize('This is a VERY good Running-shoe, and it fits! 10/10 x')).toEqual([
      'good',
      'running',
      'shoe',
      'fits',
      '10',
      '10',
    ]);
  });

  it('emits CJK unigrams and adjacent bigrams', () => {
    const t = tokenize('这双跑鞋很舒服');
    for (const tok of ['双', '跑', '鞋', '舒', '服', '这双', '双跑', '跑鞋', '鞋很', '很舒', '舒服']) {
      expect(t).toContain(tok);
    }
    // Only unigrams and bigrams, nothing longer.
    for (const tok of t) expect([...tok].length).toBeLessThanOrEqual(2);
    // 7 characters give 6 bigrams.
    expect(t.filter((x) => x.length === 2)).toHaveLength(6);
  });

  it('separates Latin and CJK runs in mixed text, Japanese and Korean included', () => {
    const t = tokenize('新款iPhone手机壳 case, ランニングシューズ 운동화');
    expect(t).toContain('iphone');
    expect(t).toContain('case');
    expect(t).toContain('手机');
    expect(t).toContain('新款');
    expect(t).toContain('シュ');
    expect(t).toContain('운동');
    expect(t).not.toContain('iphone手机壳');
    expect(t.some((x) => /[a-z]/.test(x) && /\p{sc=Han}/u.test(x))).toBe(false);
  });

  it('handles emoji without throwing and without emitting them', () => {
    expect(tokenize('😀👍🏽 love these 🔥🔥 shoes 👨‍👩‍👧')).toEqual(['love', 'these', 'shoes']);
    expect(tokenize('😀😀😀')).toEqual([]);
    // A lone surrogate is not a letter: ignored, not a crash.
    expect(tokenize('ok\uD83D great')).toEqual(['ok', 'great']);
  });

  it('handles RTL scripts, with bidi control characters stripped', () => {
    expect(tokenize('مرحبا بالعالم')).toEqual(['مرحبا', 'بالعالم']);
    expect(tokenize('\u202Bשלום עולם\u202C')).toEqual(['שלום', 'עולם']);
    // Arabic diacritics (combining marks) stay inside the word.
    expect(tokenize('مَرْحَبًا')).toEqual(['مَرْحَبًا']);
  });

  it('keeps Devanagari words whole despite vowel-sign marks', () => {
    expect(tokenize('हिन्दी भाषा')).toEqual(['हिन्दी', 'भाषा']);
  });

  it('strips zero-width characters inside words, controls separate', () => {
    expect(tokenize('fr\u200Bee sh\u200Do\u200Ces\uFEFF')).toEqual(['free', 'shoes']);
    expect(tokenize('red\nshoes\tsale')).toEqual(['red', 'shoes', 'sale']);
  });

  it('applies NFKC normalisation', () => {
    expect(tokenize('ＡＢＣ')).toEqual(['abc']);
    expect(tokenize('ﬁne ＳＨＯＥＳ')).toEqual(['fine', 'shoes']);
    // Half-width katakana become full-width.
    expect(tokenize('ｼｭｰｽﾞ')).toEqual(tokenize('シューズ'));
  });

  it('is bounded by maxTokens', () => {
    const words = Array.from({ length: 1000 }, (_, i) => `word${i}`).join(' ');
    expect(tokenize(words, 10)).toHaveLength(10);
    expect(tokenize(words, 10)[0]).toBe('word0');
    expect(tokenize(words)).toHaveLength(256);
    expect(tokenize('跑鞋'.repeat(500), 7)).toHaveLength(7);
    expect(tokenize('running shoes', 0)).toEqual([]);
    expect(tokenize('')).toEqual([]);
  });
});

describe('feature hasher', () => {
  it('is deterministic, unsigned 32-bit and seed-dependent', () => {
    expect(hash32('cat:shoes')).toBe(hash32('cat:shoes'));
    expect(hash32('cat:shoes', 7)).toBe(hash32('cat:shoes', 7));
    expect(hash32('cat:shoes', 1)).not.toBe(hash32('cat:shoes', 2));
    expect(hash32('cat:shoes')).not.toBe(hash32('cat:shoe'));
    for (const s of ['', 'a', 'ab', '跑鞋', '😀']) {
      const h = hash32(s);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });

  it('keeps its values: changing the hash silently changes every stored vector', () => {
    // Pinned values. If this fails on purpose, bump GENERATOR_REVISION in
    // src/inference/models/default-models.ts: the default encoders' token and id rows move.
    expect([hash32(''), hash32('cat:shoes'), hash32('tok:跑鞋', 42)]).toEqual([
      2872998923, 2828357159, 1866387534,
    ]);
  });

  it('spreads 10,000 similar strings evenly over 128 buckets', () => {
    for (const seed of [0, 12345]) {
      const buckets = new Uint32Array(128);
      for (let i = 0; i < 10_000; i++) buckets[hash32(`item:${i}`, seed) % 128]!++;
      const mean = 10_000 / 128;
      expect(Math.max(...buckets)).toBeLessThan(3 * mean);
      expect(Math.min(...buckets)).toBeGreaterThan(mean / 3);
      // Chi-square against uniform: 127 degrees of freedom, p=0.001 critical value is ~181.
      let chi2 = 0;
      for (const c of buckets) chi2 += (c - mean) ** 2 / mean;
      expect(chi2).toBeLessThan(181);
    }
  });
});

describe('image decoder', () => {
  it('reads PNG, JPEG and WebP into size x size x 3 bytes of RGB', async () => {
    const encoders = {
      png: (x: Sharp) => x.png(),
      jpeg: (x: Sharp) => x.jpeg(),
      webp: (x: Sharp) => x.webp(),
    } as const;
    for (const [name, encode] of Object.entries(encoders)) {
      const buf = await encode(solid(40, 30, RED)).toBuffer();
      expect(sniffImageFormat(buf), name).toBe(name);
      const px = await decodeRgb(buf, SIZE, MAX_PIXELS);
      expect(px, name).toBeInstanceOf(Buffer);
      expect(px, name).toHaveLength(SIZE * SIZE * 3);
      for (let p = 0; p < SIZE * SIZE; p++) {
        // Lossy codecs: loose.
        if (Math.abs(px[p * 3]! - RED.r) > 8) expect.fail(`${name}: pixel ${p} red is ${px[p * 3]}`);
        if (Math.abs(px[p * 3 + 1]! - RED.g) > 8) expect.fail(`${name}: pixel ${p} green is ${px[p * 3 + 1]}`);
        if (Math.abs(px[p * 3 + 2]! - RED.b) > 8) expect.fail(`${name}: pixel ${p} blue is ${px[p * 3 + 2]}`);
      }
    }
  });

  it('gives 3 channels for greyscale and alpha images too', async () => {
    const greyRaw = (channels: 1 | 2, v: number) =>
      sharp(Buffer.alloc(20 * 20 * channels, v), { raw: { width: 20, height: 20, channels } }).toColourspace('b-w');
    const grey = await greyRaw(1, 200).png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const pxGrey = await decodeRgb(grey, SIZE, MAX_PIXELS);
    expect(pxGrey).toHaveLength(SIZE * SIZE * 3);
    expect(pxGrey.every((v) => v === 200)).toBe(true);
    const greyJpeg = await greyRaw(1, 200).jpeg().toBuffer();
    expect((await sharp(greyJpeg).metadata()).channels).toBe(1);
    const pxGreyJpeg = await decodeRgb(greyJpeg, SIZE, MAX_PIXELS);
    expect(pxGreyJpeg).toHaveLength(SIZE * SIZE * 3);
    expect(pxGreyJpeg.every((v) => Math.abs(v - 200) <= 2)).toBe(true);
    const greyAlpha = await greyRaw(2, 128).png().toBuffer();
    expect((await sharp(greyAlpha).metadata()).channels).toBe(2);
    const pxGreyAlpha = await decodeRgb(greyAlpha, SIZE, MAX_PIXELS);
    expect(pxGreyAlpha).toHaveLength(SIZE * SIZE * 3);
    // Premultiplied-alpha resampling may round by one.
    expect(pxGreyAlpha.every((v) => Math.abs(v - 128) <= 1)).toBe(true);
    const rgba = await sharp({
      create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    expect((await sharp(rgba).metadata()).channels).toBe(4);
    const pxRgba = await decodeRgb(rgba, SIZE, MAX_PIXELS);
    expect(pxRgba).toHaveLength(SIZE * SIZE * 3);
    expect(Array.from(pxRgba.subarray(0, 3))).toEqual([0, 0, 255]);
    expect(Array.from(pxRgba.subarray(pxRgba.length - 3))).toEqual([0, 0, 255]);
  });

  it('keeps the spatial layout: row-major pixels, left stays left', async () => {
    // Left half red, right half blue; decoded to 2x2.
    const raw = Buffer.alloc(8 * 8 * 3);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) raw[(y * 8 + x) * 3 + (x < 4 ? 0 : 2)] = 255;
    }
    const png = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    const px = await decodeRgb(png, 2, MAX_PIXELS);
    expect(px).toHaveLength(12);
    // Resampling blurs the edge a little; which side is which colour must not change.
    for (const p of [0, 2]) expect(px[p * 3]!, `pixel ${p}`).toBeGreaterThan(px[p * 3 + 2]! + 150);
    for (const p of [1, 3]) expect(px[p * 3 + 2]!, `pixel ${p}`).toBeGreaterThan(px[p * 3]! + 150);
    for (let p = 0; p < 4; p++) expect(px[p * 3 + 1]).toBe(0);
  });

  it('rejects SVG, GIF, TIFF, random bytes and empty input', async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>',
    );
    const gif = await solid(10, 10, RED).gif().toBuffer();
    const tiff = await solid(10, 10, RED).tiff().toBuffer();
    const rand = rng(99);
    const junk = Buffer.alloc(4096);
    for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256);
    for (const buf of [svg, gif, tiff, junk, Buffer.alloc(0)]) expect(sniffImageFormat(buf)).toBeNull();
    await expectUnreadable(decodeRgb(svg, SIZE, MAX_PIXELS), /not JPEG, PNG or WebP/);
    await expectUnreadable(decodeRgb(gif, SIZE, MAX_PIXELS), /not JPEG, PNG or WebP/);
    await expectUnreadable(decodeRgb(tiff, SIZE, MAX_PIXELS), /not JPEG, PNG or WebP/);
    await expectUnreadable(decodeRgb(junk, SIZE, MAX_PIXELS), /not JPEG, PNG or WebP/);
    await expectUnreadable(decodeRgb(Buffer.alloc(0), SIZE, MAX_PIXELS), /empty/);
  });

  it('rejects random bytes behind a valid magic number with what sharp said', async () => {
    const rand = rng(7);
    const body = Buffer.alloc(2048);
    for (let i = 0; i < body.length; i++) body[i] = Math.floor(rand() * 256);
    const fakePng = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), body]);
    expect(sniffImageFormat(fakePng)).toBe('png');
    await expectUnreadable(decodeRgb(fakePng, SIZE, MAX_PIXELS), /could not decode png image \(2056 bytes/);
  });

  it('rejects a truncated JPEG', async () => {
    const jpeg = await noisyPng(RED, 60, 5).then((b) => sharp(b).resize(256, 256).jpeg().toBuffer());
    await expect(decodeRgb(jpeg, SIZE, MAX_PIXELS)).resolves.toHaveLength(SIZE * SIZE * 3);
    await expectUnreadable(decodeRgb(jpeg.subarray(0, Math.floor(jpeg.length / 2)), SIZE, MAX_PIXELS), /jpeg/);
    await expectUnreadable(decodeRgb(jpeg.subarray(0, 200), SIZE, MAX_PIXELS), /jpeg/);
  });

  it('rejects an image over the pixel limit, naming its dimensions', async () => {
    const big = await solid(3000, 3000, RED).png().toBuffer();
    await expectUnreadable(decodeRgb(big, SIZE, 1e6), /3000x3000 = 9000000 pixels, over the limit of 1000000/);
    // A limit of 0 means "unlimited" to sharp; here it refuses everything.
    await expectUnreadable(decodeRgb(big, SIZE, 0), /3000x3000/);
    // The same image is fine under a limit it fits in.
    await expect(decodeRgb(big, SIZE, 1e7)).resolves.toHaveLength(SIZE * SIZE * 3);
  });

  describe('rgbToTensor', () => {
    // A 2x2 image, row-major: pixel p has RGB (10p + 1, 10p + 2, 10p + 3) * 5.
    const px = Uint8Array.from({ length: 12 }, (_, j) => (10 * Math.floor(j / 3) + (j % 3) + 1) * 5);
    const mean = [0.4, 0.5, 0.6] as const;
    const std = [0.2, 0.25, 0.5] as const;
    const value = (p: number, c: number) => (px[p * 3 + c]! / 255 - mean[c]) / std[c];
    const pre = (layout: ImagePreprocessing['layout']): ImagePreprocessing => ({ size: 2, layout, mean, std });
    const offset = 3;

    it('writes NCHW: one plane per channel, pixels row-major within it', () => {
      const out = new Float32Array(offset + 12 + 2).fill(7);
      rgbToTensor(px, pre('NCHW'), out, offset);
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < 4; p++) expect(out[offset + c * 4 + p], `c=${c} p=${p}`).toBeCloseTo(value(p, c), 5);
      }
      // Spot checks by hand: R of pixel 0 = (5/255 - 0.4)/0.2; B of pixel 3 = (165/255 - 0.6)/0.5.
      expect(out[offset]).toBeCloseTo((5 / 255 - 0.4) / 0.2, 5);
      expect(out[offset + 11]).toBeCloseTo((165 / 255 - 0.6) / 0.5, 5);
      expect(out[offset + 4 + 1]).toBeCloseTo((60 / 255 - 0.5) / 0.25, 5); // G of pixel 1
      // Nothing outside out[offset .. offset + 12).
      expect(Array.from(out.subarray(0, offset))).toEqual([7, 7, 7]);
      expect(Array.from(out.subarray(offset + 12))).toEqual([7, 7]);
    });

    it('writes NHWC: channels interleaved per pixel', () => {
      const out = new Float32Array(offset + 12 + 2).fill(7);
      rgbToTensor(px, pre('NHWC'), out, offset);
      for (let p = 0; p < 4; p++) {
        for (let c = 0; c < 3; c++) expect(out[offset + p * 3 + c], `p=${p} c=${c}`).toBeCloseTo(value(p, c), 5);
      }
      expect(out[offset]).toBeCloseTo((5 / 255 - 0.4) / 0.2, 5);
      expect(out[offset + 11]).toBeCloseTo((165 / 255 - 0.6) / 0.5, 5);
      expect(out[offset + 3 + 1]).toBeCloseTo((60 / 255 - 0.5) / 0.25, 5); // G of pixel 1
      expect(Array.from(out.subarray(0, offset))).toEqual([7, 7, 7]);
      expect(Array.from(out.subarray(offset + 12))).toEqual([7, 7]);
    });
  });
});
