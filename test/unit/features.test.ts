import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { RejectedRecordError } from '../../src/errors.js';
import { addHashedFeature, hash32, l2normalize } from '../../src/features/feature-hasher.js';
import {
  ACTION_WEIGHT,
  HashedFeaturizer,
  type ClickAction,
} from '../../src/features/featurizer.js';
import { imageSignature, projectSignature } from '../../src/features/image-signature.js';
import { tokenize } from '../../src/features/text-tokens.js';

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

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
const BLUE = { r: 20, g: 20, b: 220 };
const LIMIT = { maxPixels: 4_000_000 };

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
    // Pinned values. If this fails on purpose, bump HashedFeaturizer.modelVersion.
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

  it('addHashedFeature writes ±weight at exactly two slots inside the slice', () => {
    const dim = 64;
    const out = new Float32Array(3 * dim);
    const positions = new Uint32Array(dim);
    const signs = { pos: 0, neg: 0 };
    for (let i = 0; i < 2000; i++) {
      out.fill(0);
      addHashedFeature(out, dim, dim, `feat-${i}`, 0.75);
      // Nothing outside [dim, 2*dim). (Plain checks: expect() per element is slow here.)
      const outside = [...out.subarray(0, dim), ...out.subarray(2 * dim)].filter((v) => v !== 0);
      if (outside.length > 0) expect.fail(`feat-${i} wrote outside its slice`);
      const touched = [...out.subarray(dim, 2 * dim).entries()].filter(([, v]) => v !== 0);
      if (touched.length !== 2) expect.fail(`feat-${i} touched ${touched.length} slots, not 2`);
      for (const [j, v] of touched) {
        if (Math.abs(Math.abs(v) - 0.75) > 1e-6) expect.fail(`feat-${i} slot ${j} holds ${v}`);
        positions[j]!++;
        if (v > 0) signs.pos++;
        else signs.neg++;
      }
    }
    // Both signs and all positions get used.
    expect(signs.pos).toBeGreaterThan(1700);
    expect(signs.neg).toBeGreaterThan(1700);
    expect(Math.min(...positions)).toBeGreaterThan(0);
    expect(Math.max(...positions)).toBeLessThan((3 * 4000) / dim);
  });

  it('addHashedFeature accumulates and is deterministic', () => {
    const a = new Float32Array(32);
    const b = new Float32Array(32);
    addHashedFeature(a, 0, 32, 'cat:shoes', 1);
    addHashedFeature(a, 0, 32, 'cat:shoes', 1);
    addHashedFeature(b, 0, 32, 'cat:shoes', 2);
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('l2normalize returns the norm, normalises the slice only, leaves zeros as zeros', () => {
    const v = new Float32Array([9, 3, 4, 9]);
    expect(l2normalize(v, 1, 2)).toBeCloseTo(5, 6);
    expect(v[0]).toBe(9);
    expect(v[1]).toBeCloseTo(0.6, 6);
    expect(v[2]).toBeCloseTo(0.8, 6);
    expect(v[3]).toBe(9);
    const z = new Float32Array(8);
    expect(l2normalize(z, 0, 8)).toBe(0);
    expect(Array.from(z)).toEqual(new Array(8).fill(0));
  });
});

describe('imageSignature', () => {
  it('reads PNG, JPEG and WebP into 48 centred values', async () => {
    const encoders = {
      png: (s: Sharp) => s.png(),
      jpeg: (s: Sharp) => s.jpeg(),
      webp: (s: Sharp) => s.webp(),
    };
    for (const [name, encode] of Object.entries(encoders)) {
      const buf = await encode(solid(40, 30, RED)).toBuffer();
      const sig = await imageSignature(buf, LIMIT);
      expect(sig, name).toBeInstanceOf(Float32Array);
      expect(sig).toHaveLength(48);
      for (let p = 0; p < 16; p++) {
        // Red ~ 220/255 - 0.5 = 0.36, green/blue ~ 20/255 - 0.5 = -0.42 (lossy codecs: loose).
        expect(sig[p * 3]!, name).toBeCloseTo(220 / 255 - 0.5, 1);
        expect(sig[p * 3 + 1]!, name).toBeCloseTo(20 / 255 - 0.5, 1);
        expect(sig[p * 3 + 2]!, name).toBeCloseTo(20 / 255 - 0.5, 1);
      }
    }
  });

  it('gives 3-channel signatures for greyscale and alpha images too', async () => {
    const grey = await solid(20, 20, { r: 255, g: 255, b: 255 }).greyscale().png().toBuffer();
    const sigGrey = await imageSignature(grey, LIMIT);
    expect(sigGrey).toHaveLength(48);
    for (const x of sigGrey) expect(x).toBeCloseTo(0.5, 2);
    const rgba = await sharp({
      create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } },
    })
      .png()
      .toBuffer();
    const sigRgba = await imageSignature(rgba, LIMIT);
    expect(sigRgba).toHaveLength(48);
    expect(sigRgba[2]).toBeCloseTo(0.5, 2);
    expect(sigRgba[0]).toBeCloseTo(-0.5, 2);
  });

  it('keeps spatial layout: left-red/right-blue differs from its mirror', async () => {
    const raw = Buffer.alloc(8 * 8 * 3);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) raw[(y * 8 + x) * 3 + (x < 4 ? 0 : 2)] = 255;
    }
    const left = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    const right = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).flop().png().toBuffer();
    const a = await imageSignature(left, LIMIT);
    const b = await imageSignature(right, LIMIT);
    expect(cosine(a, b)).toBeLessThan(0.5);
  });

  it('separates red from blue and keeps noisy reds together', async () => {
    const red1 = await imageSignature(await noisyPng(RED, 30, 1), LIMIT);
    const red2 = await imageSignature(await noisyPng(RED, 30, 2), LIMIT);
    const blue = await imageSignature(await noisyPng(BLUE, 30, 3), LIMIT);
    expect(cosine(red1, blue)).toBeLessThan(0);
    expect(cosine(red1, red2)).toBeGreaterThan(0.95);
    expect(cosine(red1, red2)).toBeGreaterThan(cosine(red1, blue) + 0.5);
    expect(cosine(red2, red1)).toBeGreaterThan(cosine(red2, blue) + 0.5);
  });

  it('rejects SVG, GIF, TIFF, random bytes and empty input', async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>',
    );
    await expectUnreadable(imageSignature(svg, LIMIT), /not JPEG, PNG or WebP/);
    await expectUnreadable(imageSignature(await solid(10, 10, RED).gif().toBuffer(), LIMIT));
    await expectUnreadable(imageSignature(await solid(10, 10, RED).tiff().toBuffer(), LIMIT));
    const rand = rng(99);
    const junk = Buffer.alloc(4096);
    for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256);
    await expectUnreadable(imageSignature(junk, LIMIT));
    await expectUnreadable(imageSignature(Buffer.alloc(0), LIMIT), /empty/);
  });

  it('rejects random bytes behind a valid magic number with what sharp said', async () => {
    const rand = rng(7);
    const body = Buffer.alloc(2048);
    for (let i = 0; i < body.length; i++) body[i] = Math.floor(rand() * 256);
    const fakePng = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), body]);
    await expectUnreadable(imageSignature(fakePng, LIMIT), /png/);
  });

  it('rejects a truncated JPEG', async () => {
    const jpeg = await noisyPng(RED, 60, 5).then((b) => sharp(b).resize(256, 256).jpeg().toBuffer());
    await expect(imageSignature(jpeg, LIMIT)).resolves.toHaveLength(48);
    await expectUnreadable(imageSignature(jpeg.subarray(0, Math.floor(jpeg.length / 2)), LIMIT), /jpeg/);
    await expectUnreadable(imageSignature(jpeg.subarray(0, 200), LIMIT));
  });

  it('rejects an image over the pixel limit, naming its dimensions', async () => {
    const big = await solid(3000, 3000, RED).png().toBuffer();
    await expectUnreadable(imageSignature(big, { maxPixels: 1e6 }), /3000x3000/);
    // A limit of 0 would mean "unlimited" to sharp: refused outright.
    await expect(imageSignature(big, { maxPixels: 0 })).rejects.toThrow(RangeError);
    // The same image is fine under a limit it fits in.
    await expect(imageSignature(big, { maxPixels: 1e7 })).resolves.toHaveLength(48);
  });

  it('projectSignature is fixed, additive and keeps similar images similar', async () => {
    const red1 = await imageSignature(await noisyPng(RED, 30, 1), LIMIT);
    const red2 = await imageSignature(await noisyPng(RED, 30, 2), LIMIT);
    const blue = await imageSignature(await noisyPng(BLUE, 30, 3), LIMIT);
    const dim = 256;
    const project = (sig: Float32Array) => {
      const out = new Float32Array(dim);
      projectSignature(sig, out, 0, dim);
      return out;
    };
    const p1 = project(red1);
    expect(Array.from(project(red1))).toEqual(Array.from(p1));
    // Additive: projecting into a slice that already holds p1 doubles it.
    const twice = new Float32Array(dim + 4);
    projectSignature(red1, twice, 4, dim);
    projectSignature(red1, twice, 4, dim);
    for (let j = 0; j < dim; j++) expect(twice[4 + j]).toBeCloseTo(2 * p1[j]!, 5);
    expect(Array.from(twice.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(cosine(p1, project(red2))).toBeGreaterThan(0.9);
    expect(cosine(p1, project(blue))).toBeLessThan(cosine(p1, project(red2)) - 0.5);
    expect(() => projectSignature(new Float32Array(10), new Float32Array(dim), 0, dim)).toThrow(RangeError);
  });
});

describe('HashedFeaturizer', () => {
  const dim = 256;
  const f = new HashedFeaturizer({ dim });

  it('names its model and action weights', () => {
    expect(f.dim).toBe(256);
    expect(f.modelVersion).toBe('hashed-v1-d256');
    expect(ACTION_WEIGHT).toEqual({ VIEW: 1, CLICK: 2, ADD_TO_CART: 3, PURCHASE: 4 });
    expect(() => new HashedFeaturizer({ dim: 0 })).toThrow(RangeError);
    expect(() => new HashedFeaturizer({ dim: 12.5 })).toThrow(RangeError);
  });

  it('scores a shoes-clicking user higher with a shoes ad than a phones ad', () => {
    const user = new Float32Array(dim);
    const ev = new Float32Array(dim);
    const clicks: Array<[string, ClickAction]> = [
      ['sku-1', 'VIEW'],
      ['sku-2', 'CLICK'],
      ['sku-3', 'ADD_TO_CART'],
      ['sku-2', 'PURCHASE'],
    ];
    for (const [item, action] of clicks) {
      f.click(item, 'shoes', ev, 0);
      for (let j = 0; j < dim; j++) user[j]! += ACTION_WEIGHT[action] * ev[j]!;
    }
    const shoesAd = new Float32Array(dim);
    const phonesAd = new Float32Array(dim);
    f.ad('shoes', 'Trail running shoes', 'Light and grippy', null, shoesAd, 0);
    f.ad('phones', 'Smartphone 5G', 'Big battery, great camera', null, phonesAd, 0);
    expect(cosine(user, shoesAd)).toBeGreaterThan(0.5);
    expect(cosine(user, shoesAd)).toBeGreaterThan(cosine(user, phonesAd) + 0.4);
  });

  it('matches a Chinese review without category to the ad with the same words', () => {
    const review = new Float32Array(dim);
    f.text('这双跑鞋很轻便，跑步的时候特别舒服，推荐！', null, review, 0);
    const shoes = new Float32Array(dim);
    const phones = new Float32Array(dim);
    f.ad('c-100', '轻便跑鞋 特价', '', null, shoes, 0);
    f.ad('c-200', '智能手机 新品', '', null, phones, 0);
    expect(cosine(review, shoes)).toBeGreaterThan(0.1);
    expect(cosine(review, shoes)).toBeGreaterThan(cosine(review, phones) + 0.1);
  });

  it('uses the same category feature in every method', () => {
    const a = new Float32Array(dim);
    const b = new Float32Array(dim);
    const c = new Float32Array(dim);
    const d = new Float32Array(dim);
    f.text('', 'shoes', a, 0);
    f.image(null, 'shoes', b, 0);
    f.ad('shoes', '', '', null, c, 0);
    f.click('x', 'shoes', d, 0);
    expect(cosine(a, b)).toBeCloseTo(1, 5);
    expect(cosine(a, c)).toBeCloseTo(1, 5);
    // Click = category (1) + item (0.5): mostly the category.
    expect(cosine(a, d)).toBeGreaterThan(0.85);
    f.text('', 'phones', b, 0);
    expect(Math.abs(cosine(a, b))).toBeLessThan(0.2);
  });

  it('keeps the category visible next to a long review', () => {
    const long = Array.from({ length: 200 }, (_, i) => `w${i}ord`).join(' ');
    const withCat = new Float32Array(dim);
    const catOnly = new Float32Array(dim);
    f.text(long, 'shoes', withCat, 0);
    f.text('', 'shoes', catOnly, 0);
    // Two unit blocks: the category contributes ~1/sqrt(2) of the direction.
    expect(cosine(withCat, catOnly)).toBeGreaterThan(0.6);
  });

  it('uses the image: a red-image user is closer to the red-image ad', async () => {
    const red1 = await imageSignature(await noisyPng(RED, 30, 11), LIMIT);
    const red2 = await imageSignature(await noisyPng(RED, 30, 12), LIMIT);
    const blue = await imageSignature(await noisyPng(BLUE, 30, 13), LIMIT);
    const user = new Float32Array(dim);
    f.image(red1, null, user, 0);
    const redAd = new Float32Array(dim);
    const blueAd = new Float32Array(dim);
    f.ad('bags', 'Leather bag', '', red2, redAd, 0);
    f.ad('bags', 'Leather bag', '', blue, blueAd, 0);
    expect(cosine(user, redAd)).toBeGreaterThan(cosine(user, blueAd) + 0.3);
  });

  it('writes unit-norm vectors into the slice only, zeroing it first', async () => {
    const sig = await imageSignature(await noisyPng(BLUE, 20, 21), LIMIT);
    const out = new Float32Array(3 * dim).fill(7);
    const check = () => {
      expect(norm(out.subarray(dim, 2 * dim))).toBeCloseTo(1, 5);
      expect(out[dim - 1]).toBe(7);
      expect(out[2 * dim]).toBe(7);
    };
    f.click('sku-1', 'shoes', out, dim);
    check();
    f.text('Great shoes for running', 'shoes', out, dim);
    check();
    f.text('Great shoes for running', null, out, dim);
    check();
    f.image(sig, 'shoes', out, dim);
    check();
    f.image(sig, null, out, dim);
    check();
    f.ad('shoes', 'Trail shoes', 'Grippy', sig, out, dim);
    check();
    f.ad('shoes', '', '', null, out, dim);
    check();
    // Nothing to say: a zero vector, not NaN.
    f.text('😀 the a', null, out, dim);
    expect(norm(out.subarray(dim, 2 * dim))).toBe(0);
    expect(() => f.click('x', 'y', out, 2 * dim + 1)).toThrow(RangeError);
  });

  it('is deterministic across instances', () => {
    const g = new HashedFeaturizer({ dim });
    const a = new Float32Array(dim);
    const b = new Float32Array(dim);
    f.ad('shoes', '轻便跑鞋', 'running', null, a, 0);
    g.ad('shoes', '轻便跑鞋', 'running', null, b, 0);
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});
