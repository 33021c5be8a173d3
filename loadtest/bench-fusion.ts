/**
 * CPU time of in-process fusion per event (src/pipeline/fuse.ts), concat at the defaults (three
 * 128-wide encoders, F = 128): a micro-benchmark of the main thread's largest per-event loop,
 * with the projection memo off (FUSION_MEMO_ROWS=0) and on (its default), in one run. Events
 * pick their row among `--distinct` rows per modality by a Zipf law (`--zipf`, the default world's
 * 1.1 over its 1,600 items), as products' clicks and views repeat. Prints one JSON line. CPU time
 * (process.cpuUsage), not wall time: on a shared box the wall clock counts the time the OS gave
 * the core to others.
 *
 *   npx tsx loadtest/bench-fusion.ts [--events 200] [--rounds 300] [--distinct 1600] [--zipf 1.1]
 */
import { parseArgs } from 'node:util';
import type { EmbeddedEvents, ModalityBlocks } from '../src/pipeline/embed.js';
import { DEFAULT_MEMO_ROWS, Fuser } from '../src/pipeline/fuse.js';
import { seededRandom } from '../src/util/random.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '300' },
    distinct: { type: 'string', default: '1600' },
    zipf: { type: 'string', default: '1.1' },
  },
});
const n = Number(args.events);
const rounds = Number(args.rounds);
const distinct = Number(args.distinct);
const width = 128;
const blocks = [0, 1, 2].map((m) => Float32Array.from({ length: distinct * width }, (_, i) => Math.sin(0.37 * i + m))) as unknown as ModalityBlocks;

// Zipf over the distinct rows: P(rank r) ~ 1 / r^s, drawn by its cumulative sums.
const cumulative = new Float64Array(distinct);
for (let r = 0, sum = 0; r < distinct; r++) cumulative[r] = sum += 1 / (r + 1) ** Number(args.zipf);
const random = seededRandom(7);
const draw = (): number => {
  const u = random() * cumulative[distinct - 1]!;
  let lo = 0;
  let hi = distinct - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};
// Each round fuses the next `n` events of a long stream, so the memo sees the stream as a chunk would.
const chunks: EmbeddedEvents[] = Array.from({ length: 64 }, () => ({
  modality: Uint8Array.from({ length: n }, (_, i) => i % 3),
  row: Int32Array.from({ length: n }, draw),
  blocks,
  failures: new Map(),
}));
const events = Array.from({ length: n }, (_, i) => i);

function cpuUsPerEvent(memoRows: number): number {
  const fuser = new Fuser({ strategy: 'concat', inputDim: width, dim: 128, weights: [1, 0.8, 1.2] }, [width, width, width], memoRows);
  for (let i = 0; i < 50; i++) fuser.fuseEvents(chunks[i % chunks.length]!, events); // warm-up: optimised code
  const c0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) fuser.fuseEvents(chunks[i % chunks.length]!, events);
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / (rounds * n)) * 100) / 100;
}

const off = cpuUsPerEvent(0);
const on = cpuUsPerEvent(DEFAULT_MEMO_ROWS);
console.log(JSON.stringify({ fusion_cpu_us_per_event: on, fusion_cpu_us_per_event_no_memo: off, memo_speedup: Math.round((off / on) * 100) / 100, memo_rows: DEFAULT_MEMO_ROWS, events: n, rounds, width, distinct, zipf: Number(args.zipf) }));
