/**
 * The attribution's durable state as changelog records of the partition (keys start with NUL, so
 * the local store keeps them with the markers and the restore hands them back). Per piece, so a
 * chunk writes only what it changed and no record grows with the partition:
 * - `\0attr/o/<user+output>`: one served output, its interest rows (float32) and its ads (ids, CTR,
 *   which row matched, live or not), written once when served, again when its captures expire;
 * - `\0attr/a/<adKey>`: one version of an ad's fused vector, shared by every output that served it;
 * - `\0attr/u/<userId>`: a user's labelling state (pending impressions, closed labels, waiting
 *   clicks, recent feedback ids), ids and times only;
 * - `\0attr/p`: the partition's watermark.
 * A null value deletes the record (compaction then drops it).
 */
import type { AttributionRecord } from '../domain/outputs.js';
import { bytesToFloats, floatBytes } from '../state/user-state-codec.js';
import type { AttributionChanges, AttributionState, HeldOutput, PartitionMark, ServedAd, UserLabels } from './attribution.js';

export const ATTRIBUTION_PREFIX = '\u0000attr/';
const OUTPUT = `${ATTRIBUTION_PREFIX}o/`;
const AD = `${ATTRIBUTION_PREFIX}a/`;
const USER = `${ATTRIBUTION_PREFIX}u/`;
const PARTITION = `${ATTRIBUTION_PREFIX}p`;
const VERSION = 1;

interface OutputHeader {
  readonly v: number;
  readonly userId: string;
  readonly outputId: string;
  readonly servedAt: number;
  readonly modelVersion: string;
  readonly dim: number;
  readonly rows: number;
  /** adId, adKey, row, ctr, live (0/1). */
  readonly ads: [string, string, number, number, number][];
}

/** The changelog records of one partition's attribution changes. */
export function attributionRecords(partition: number, changes: AttributionChanges): AttributionRecord[] {
  const out: AttributionRecord[] = [];
  // Ad vectors before the outputs naming them: a restore that stops between finds them.
  for (const [adKey, ad] of changes.ads) out.push({ partition, key: AD + adKey, value: ad ? Buffer.from(floatBytes(ad)) : null });
  for (const [key, held] of changes.outputs) out.push({ partition, key: OUTPUT + key, value: held ? encodeOutput(held) : null });
  for (const [userId, labels] of changes.users) out.push({ partition, key: USER + userId, value: labels ? json({ v: VERSION, ...labels }) : null });
  if (changes.partition) out.push({ partition, key: PARTITION, value: json({ v: VERSION, ...changes.partition }) });
  return out;
}

/** The state the partition's records hold (markers of the local store: other keys are ignored). */
export function attributionState(markers: Iterable<readonly [string, Buffer]>): AttributionState {
  const ads = new Map<string, Float32Array>();
  const outputs: Buffer[] = [];
  const users: [string, UserLabels][] = [];
  let partition: PartitionMark | undefined;
  for (const [key, value] of markers) {
    if (!key.startsWith(ATTRIBUTION_PREFIX)) continue;
    if (key.startsWith(AD)) ads.set(key.slice(AD.length), bytesToFloats(Buffer.from(value)));
    else if (key.startsWith(OUTPUT)) outputs.push(value);
    else if (key.startsWith(USER)) {
      const labels = parse<UserLabels>(value);
      if (labels) users.push([key.slice(USER.length), labels]);
    } else if (key === PARTITION) partition = parse<PartitionMark>(value) ?? undefined;
  }
  const held: HeldOutput[] = [];
  for (const value of outputs) {
    const h = decodeOutput(value, ads);
    if (h) held.push(h);
  }
  return { ...(partition ? { partition } : {}), outputs: held, users };
}

function encodeOutput({ out, live }: HeldOutput): Buffer {
  const dim = out.interests[0]?.length ?? 0;
  const header: OutputHeader = { v: VERSION, userId: out.userId, outputId: out.outputId, servedAt: out.servedAt, modelVersion: out.modelVersion, dim, rows: out.interests.length, ads: out.ads.map((a, i) => [a.adId, a.adKey, a.row, a.ctr, live[i] ? 1 : 0]) };
  const head = Buffer.from(JSON.stringify(header), 'utf8');
  const value = Buffer.allocUnsafe(4 + head.length + out.interests.length * dim * 4);
  value.writeUInt32LE(head.length, 0);
  head.copy(value, 4);
  let at = 4 + head.length;
  for (const row of out.interests) {
    floatBytes(row).copy(value, at);
    at += dim * 4;
  }
  return value;
}

/** A served output back, its ads' vectors from `ads`; null if unreadable or an ad version is missing. */
function decodeOutput(value: Buffer, ads: ReadonlyMap<string, Float32Array>): HeldOutput | null {
  const b = Buffer.from(value);
  if (b.length < 4) return null;
  const len = b.readUInt32LE(0);
  const h = parse<OutputHeader>(b.subarray(4, 4 + len));
  if (!h || b.length !== 4 + len + h.rows * h.dim * 4) return null;
  const interests: Float32Array[] = [];
  for (let r = 0; r < h.rows; r++) interests.push(bytesToFloats(b.subarray(4 + len + r * h.dim * 4, 4 + len + (r + 1) * h.dim * 4)));
  const served: ServedAd[] = [];
  for (const [adId, adKey, row, ctr] of h.ads) {
    const ad = ads.get(adKey);
    if (!ad) return null;
    served.push({ adId, adKey, ad, row, ctr });
  }
  return { out: { userId: h.userId, outputId: h.outputId, servedAt: h.servedAt, modelVersion: h.modelVersion, interests, ads: served }, live: h.ads.map((a) => a[4] === 1) };
}

function json(x: unknown): Buffer {
  return Buffer.from(JSON.stringify(x), 'utf8');
}

/** A record of ours in this format, or null (another version, unreadable): that piece starts fresh. */
function parse<T>(b: Uint8Array): T | null {
  try {
    const x = JSON.parse(Buffer.from(b).toString('utf8')) as { v?: number };
    return x.v === VERSION ? (x as T) : null;
  } catch {
    return null;
  }
}
