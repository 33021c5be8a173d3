/**
 * CPU time of in-process fusion per event (src/pipeline/fuse.ts), concat at the defaults (three
 * 128-wide encoders, F = 128): a micro-benchmark of the main thread's largest per-event loop.
 * Prints one JSON line. CPU time (process.cpuUsage), not wall time: on a shared box the wall
 * clock counts the time the OS gave the core to others.
 *
 *   npx tsx loadtest/bench-fusion.ts [--events 200] [--rounds 300]
 */
import { parseArgs } from 'node:util';
import type { EmbeddedEvents, ModalityBlocks } from '../src/pipeline/embed.js';
import { Fuser } from '../src/pipeline/fuse.js';

const { values: args } = parseArgs({ options: { events: { type: 'string', default: '200' }, rounds: { type: 'string', default: '300' } } });
const n = Number(args.events);
const rounds = Number(args.rounds);
const width = 128;
const fuser = new Fuser({ strategy: 'concat', inputDim: width, dim: 128, weights: [1, 0.8, 1.2] }, [width, width, width]);
const blocks = [0, 1, 2].map((m) => Float32Array.from({ length: n * width }, (_, i) => Math.sin(0.37 * i + m))) as unknown as ModalityBlocks;
const embedded: EmbeddedEvents = { modality: Uint8Array.from({ length: n }, (_, i) => i % 3), row: Int32Array.from({ length: n }, (_, i) => i), blocks, failures: new Map() };
const events = Array.from({ length: n }, (_, i) => i);
for (let i = 0; i < 50; i++) fuser.fuseEvents(embedded, events); // warm-up: optimised code
const c0 = process.cpuUsage();
for (let i = 0; i < rounds; i++) fuser.fuseEvents(embedded, events);
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ fusion_cpu_us_per_event: Math.round(((c.user + c.system) / (rounds * n)) * 100) / 100, events: n, rounds, width }));
