/**
 * The processor core's own cost, with no broker: the world's traffic replayed through the core
 * (real models on worker threads, the local state store) as the Kafka adapter feeds it (a task per
 * partition number, several at once), each result encoded as the sink would (outputs and
 * changelog records), at several chunk sizes. A chunk of 1 record is the steady state of a sparse
 * load (every event its own output); a chunk of 500 is a backlog. Prints, per chunk size, events/s
 * and the main thread's busy time per event (event-loop utilisation), then one JSON line.
 *
 *   npm run bench:core -- [--events 6000] [--chunks 1,4,16,64,500] [--world FILE] [--env KEY=VALUE ...]
 *   node --cpu-prof ... : the same, profiled without a broker's or a load generator's noise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { startCore } from '../src/app/assemble.js';
import { loadConfig } from '../src/app/config/load-config.js';
import type { SettingName } from '../src/app/config/settings.js';
import { feed, MemoryTopics } from '../src/adapters/memory/memory-transport.js';
import { encodeAd } from '../src/devtools/traffic.js';
import type { ProcessResult } from '../src/domain/outputs.js';
import { silentLogger } from '../src/util/log.js';
import { World } from './world.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '6000' },
    chunks: { type: 'string', default: '1,4,16,64,500' },
    world: { type: 'string', default: 'loadtest/worlds/default.json' },
    env: { type: 'string', multiple: true, default: [] },
  },
});

interface Row {
  readonly chunk: number;
  readonly events: number;
  readonly eventsPerS: number;
  /** Main thread busy per event, µs (event-loop utilisation x wall time / events). */
  readonly mainUsPerEvent: number;
  /** All threads' CPU per event, µs. */
  readonly cpuUsPerEvent: number;
  readonly outputsPerEvent: number;
}

async function main(): Promise<void> {
  const overrides = Object.fromEntries(args.env!.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const world = await World.fromFile(args.world!);
  const stateDir = mkdtempSync(join(tmpdir(), 'adstream-bench-core-'));
  const config = loadConfig({ env: { ...process.env, ...overrides }, overrides: { catalogUploadIntervalMs: 0, logLevel: 'silent', stateDir } as Partial<Record<SettingName, string | number>> });
  const core = await startCore(config, { logger: silentLogger, stateDir });
  const rows: Row[] = [];
  try {
    const now = Date.now();
    const ads = world.ads.map((ad, i) => ({ topic: config.topicAds, partition: 0, offset: String(i), key: Buffer.from(ad.adId), value: encodeAd(core.codec, ad, now), timestamp: now }));
    const rejected = await core.catalogUpdater.apply(ads);
    if (rejected.length > 0) throw new Error(`catalog rejected: ${rejected[0]!.message}`);
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews } as const;
    const traffic = world.traffic(core.codec, { seed: 77, eventIdPrefix: 'core' });
    const concurrency = Math.min(config.topicPartitions * 3, 6);
    const encodeResult = (r: ProcessResult): number => {
      let bytes = 0;
      for (const o of r.scored) bytes += core.encoder.scored(o).value!.length;
      for (const s of r.segments ?? []) bytes += core.encoder.segments(s).value!.length;
      for (const s of r.stateChanges ?? []) bytes += core.local.encode(s).length;
      return bytes;
    };
    const run = async (chunk: number, events: number): Promise<Row> => {
      const topics = new MemoryTopics(config.topicPartitions);
      const t = Date.now();
      for (let i = 0; i < events; i++) {
        const e = traffic.next(t + i);
        topics.append(topicOf[e.role], e.key, e.value, t + i);
      }
      let outputs = 0;
      const elu0 = performance.eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await feed(topics.poll(chunk), (records) => core.processor.process(records), (result) => {
        outputs += result.scored.length;
        encodeResult(result);
      }, concurrency, core.local);
      const wall = performance.now() - t0;
      const elu = performance.eventLoopUtilization(elu0);
      const cpu = process.cpuUsage(cpu0);
      return { chunk, events, eventsPerS: Math.round(events / (wall / 1000)), mainUsPerEvent: Math.round((elu.utilization * wall * 1000) / events), cpuUsPerEvent: Math.round((cpu.user + cpu.system) / events), outputsPerEvent: Math.round((outputs / events) * 1000) / 1000 };
    };
    await run(16, 1000); // warm-up: caches, JIT
    for (const chunk of args.chunks!.split(',').map(Number)) {
      const row = await run(chunk, Number(args.events));
      rows.push(row);
      process.stderr.write(`chunk ${chunk}: ${row.eventsPerS} events/s, main ${row.mainUsPerEvent} µs/event, all threads ${row.cpuUsPerEvent} µs/event, ${row.outputsPerEvent} outputs/event\n`);
    }
  } finally {
    await core.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
  const machine = `${availableParallelism()} vCPU ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version.slice(1)}`;
  console.log(JSON.stringify({ rows, machine }));
}

await main();
