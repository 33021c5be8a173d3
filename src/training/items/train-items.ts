/**
 * `adstream train items`: item embeddings from a click log, written as the click encoder.
 * The log is JSON lines of clicks, {"userId","itemId","categoryId","eventTime"} (the ClickEvent
 * fields the trainer needs; eventTime in ms). Each user's clicks, in event-time order, are one
 * sequence for item2vec; the table and its MODEL_CARD go to the output folder.
 */
import { createReadStream } from 'node:fs';
import { squaredNorm } from '../../util/vectors.js';
import { createInterface } from 'node:readline';
import { DEFAULT_ITEM2VEC, trainItem2Vec, type EpochReport, type Item2VecOptions } from './item2vec.js';
import { DEFAULT_CLICK_TABLE, writeLearnedClickEncoder, type ClickTableOptions, type LearnedItems } from './learned-click-encoder.js';

export interface LoggedClick {
  readonly userId: string;
  readonly itemId: string;
  readonly categoryId: string;
  readonly eventTime: number;
}

export interface ClickSequences {
  readonly itemIds: string[];
  readonly categoryOf: string[];
  /** One per user, item indices in event-time order. */
  readonly sequences: Int32Array[];
}

/** Groups clicks by user in event-time order (ties keep the log's order); items indexed as first seen. */
export function clickSequences(clicks: Iterable<LoggedClick>): ClickSequences {
  const indexOf = new Map<string, number>();
  const itemIds: string[] = [];
  const categoryOf: string[] = [];
  const byUser = new Map<string, { item: number; time: number }[]>();
  for (const c of clicks) {
    let i = indexOf.get(c.itemId);
    if (i === undefined) {
      i = itemIds.length;
      indexOf.set(c.itemId, i);
      itemIds.push(c.itemId);
      categoryOf.push(c.categoryId);
    }
    const list = byUser.get(c.userId);
    if (list) list.push({ item: i, time: c.eventTime });
    else byUser.set(c.userId, [{ item: i, time: c.eventTime }]);
  }
  const sequences = [...byUser.values()].map((l) => Int32Array.from(l.sort((a, b) => a.time - b.time), (x) => x.item));
  return { itemIds, categoryOf, sequences };
}

/** Reads a JSON-lines click log; a bad line stops it with its line number. */
export async function readClickLog(path: string): Promise<LoggedClick[]> {
  const out: LoggedClick[] = [];
  let line = 0;
  for await (const text of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    let c: Partial<LoggedClick>;
    try {
      c = JSON.parse(text) as Partial<LoggedClick>;
    } catch (err) {
      throw new Error(`${path}:${line}: not JSON (${(err as Error).message})`);
    }
    for (const k of ['userId', 'itemId', 'categoryId'] as const) if (typeof c[k] !== 'string' || c[k] === '') throw new Error(`${path}:${line}: ${k} must be a non-empty string`);
    if (typeof c.eventTime !== 'number' || !Number.isFinite(c.eventTime)) throw new Error(`${path}:${line}: eventTime must be a number (ms)`);
    out.push(c as LoggedClick);
  }
  return out;
}

/**
 * How much of an item's vector is its popularity: rows become [sqrt(1 - p^2) * v, p] with
 * p = weight * log(1 + clicks) / log(1 + most clicks). item2vec's cosines are blind to popularity
 * (its negatives are drawn by frequency, which cancels it), while which movie a user watches next
 * depends on it a lot; adstream scores by cosine alone, so popularity has to be a coordinate: every
 * click adds a positive amount to it in the user's interest, and popular ads score that much higher.
 */
export const DEFAULT_POPULARITY_WEIGHT = 0.9;

export interface TrainItemsOptions extends Item2VecOptions {
  /** 0..1 (0: none); see DEFAULT_POPULARITY_WEIGHT. The table is dim wide: item2vec learns dim - 1. */
  readonly popularityWeight: number;
}

export const DEFAULT_TRAIN_ITEMS: TrainItemsOptions = { ...DEFAULT_ITEM2VEC, popularityWeight: DEFAULT_POPULARITY_WEIGHT };

/** items x dim rows: the unit item2vec vector (dim - 1 wide) scaled, then the popularity coordinate. */
export function withPopularity(vectors: Float32Array, sequences: readonly Int32Array[], items: number, dim: number, weight: number): Float32Array {
  if (!(weight >= 0 && weight < 1)) throw new Error(`popularityWeight must be in [0, 1), got ${weight}`);
  const learned = dim - 1;
  const clicks = new Float64Array(items);
  for (const s of sequences) for (const it of s) clicks[it]!++;
  let most = 1;
  for (const c of clicks) most = Math.max(most, c); // no spread: a catalog can have millions of items
  const out = new Float32Array(items * dim);
  for (let i = 0; i < items; i++) {
    const n = squaredNorm(vectors, i * learned, learned);
    const p = (weight * Math.log1p(clicks[i]!)) / Math.log1p(most);
    const scale = n > 0 ? Math.sqrt(1 - p * p) / Math.sqrt(n) : 0;
    for (let d = 0; d < learned; d++) out[i * dim + d] = vectors[i * learned + d]! * scale;
    out[i * dim + learned] = p;
  }
  return out;
}

export interface TrainItemsResult {
  readonly card: string;
  readonly items: number;
  readonly sequences: number;
  readonly collisions: number;
  readonly last: EpochReport;
  readonly seconds: number;
}

/** Trains on the clicks and writes the encoder and its card into `outDir`. */
export function trainItems(clicks: Iterable<LoggedClick>, outDir: string, o: TrainItemsOptions = DEFAULT_TRAIN_ITEMS, table: ClickTableOptions = DEFAULT_CLICK_TABLE, onEpoch: (r: EpochReport) => void = () => {}): TrainItemsResult {
  const t0 = performance.now();
  if (!Number.isInteger(o.dim) || o.dim < 2) throw new Error(`dim must be an integer >= 2, got ${o.dim}`);
  const seqs = clickSequences(clicks);
  const items = seqs.itemIds.length;
  const { vectors, last } = trainItem2Vec(seqs.sequences, items, { ...o, dim: o.dim - 1 }, onEpoch);
  const learned: LearnedItems = { itemIds: seqs.itemIds, categoryOf: seqs.categoryOf, vectors: withPopularity(vectors, seqs.sequences, items, o.dim, o.popularityWeight), dim: o.dim };
  const written = writeLearnedClickEncoder(outDir, learned, table, { method: 'item2vec (skip-gram, negative sampling)', ...o, loss: last.loss });
  return { card: written.card, items: seqs.itemIds.length, sequences: seqs.sequences.length, collisions: written.collisions, last, seconds: (performance.now() - t0) / 1000 };
}

/** The progress line of one epoch (stderr) and the final JSON line (stdout), as the CLI prints them. */
export function epochLine(r: EpochReport): string {
  return `epoch ${r.epoch}/${r.epochs}: loss ${r.loss.toFixed(4)}, ${Math.round(r.examplesPerSecond).toLocaleString('en-US')} examples/s`;
}

export function resultLine(r: TrainItemsResult): string {
  return JSON.stringify({ card: r.card, items: r.items, sequences: r.sequences, collisions: r.collisions, epochs: r.last.epochs, loss: Math.round(r.last.loss * 1e4) / 1e4, examples_per_second: Math.round(r.last.examplesPerSecond), seconds: Math.round(r.seconds * 10) / 10 });
}
