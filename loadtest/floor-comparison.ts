/**
 * The processor's latency against the Kafka floor (the pass-through, loadtest/passthrough.ts) at the
 * same offered loads: pairing the two sweeps, the ratios, the report's table and the chart's series.
 */
import type { Series } from './svg-chart.js';

/** One open-loop step's latency, as the bench records it. */
export interface LatencyAtLoad {
  /** Offered load, events/s. */
  readonly offered: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
}

export interface FloorRow {
  readonly offered: number;
  readonly processor_p50_ms: number;
  readonly processor_p99_ms: number;
  readonly passthrough_p50_ms: number;
  readonly passthrough_p99_ms: number;
  /** processor / pass-through; null when either is missing or the pass-through's is 0. */
  readonly p50_ratio: number | null;
  readonly p99_ratio: number | null;
}

/** processor / pass-through, to 3 decimals; null when it cannot be told (a step with no events, a 0 floor). */
export function latencyRatio(processorMs: number, passthroughMs: number): number | null {
  if (!Number.isFinite(processorMs) || !Number.isFinite(passthroughMs) || passthroughMs <= 0) return null;
  return Math.round((processorMs / passthroughMs) * 1000) / 1000;
}

function row(p: LatencyAtLoad, f: LatencyAtLoad): FloorRow {
  return {
    offered: p.offered,
    processor_p50_ms: p.p50_ms,
    processor_p99_ms: p.p99_ms,
    passthrough_p50_ms: f.p50_ms,
    passthrough_p99_ms: f.p99_ms,
    p50_ratio: latencyRatio(p.p50_ms, f.p50_ms),
    p99_ratio: latencyRatio(p.p99_ms, f.p99_ms),
  };
}

/**
 * Pairs each processor step with a pass-through step at the same offered load (the n-th at a load
 * with the n-th at that load, so a half-load step that repeats a sweep rate pairs with its own
 * repeat), sorted by offered load. Steps without a partner are left out: a ratio is only ever
 * taken at the same load.
 */
export function compareAtLoads(processor: readonly LatencyAtLoad[], passthrough: readonly LatencyAtLoad[]): FloorRow[] {
  const unused = new Map<number, LatencyAtLoad[]>();
  for (const f of passthrough) unused.set(f.offered, [...(unused.get(f.offered) ?? []), f]);
  const rows: FloorRow[] = [];
  for (const p of processor) {
    const f = unused.get(p.offered)?.shift();
    if (f) rows.push(row(p, f));
  }
  return rows.sort((a, b) => a.offered - b.offered);
}

/** The JSON line's half-load figures; both steps must be at the same offered load. */
export function halfLoadFloor(processor: LatencyAtLoad, passthrough: LatencyAtLoad): {
  passthrough_p50_ms_at_half_load: number;
  passthrough_p99_ms_at_half_load: number;
  p50_ratio_at_half_load: number | null;
  p99_ratio_at_half_load: number | null;
} {
  if (processor.offered !== passthrough.offered) throw new Error(`half load: the processor ran at ${processor.offered}/s, the pass-through at ${passthrough.offered}/s; a ratio needs the same offered load`);
  const r = row(processor, passthrough);
  return { passthrough_p50_ms_at_half_load: r.passthrough_p50_ms, passthrough_p99_ms_at_half_load: r.passthrough_p99_ms, p50_ratio_at_half_load: r.p50_ratio, p99_ratio_at_half_load: r.p99_ratio };
}

/**
 * The Kafka client the spawned processor and pass-through use: the config's KAFKA_CLIENT setting
 * (`kafkaClient`) where the config has one, else the environment's KAFKA_CLIENT, else kafkajs (the
 * default client).
 */
export function kafkaClientName(config: object, env: Readonly<Record<string, string | undefined>>): string {
  const fromConfig = (config as { kafkaClient?: unknown }).kafkaClient;
  if (typeof fromConfig === 'string' && fromConfig !== '') return fromConfig;
  return env.KAFKA_CLIENT || 'kafkajs';
}

const cell = (x: number | null): string => (x === null || !Number.isFinite(x) ? '-' : String(x));

/** The report's side-by-side table. */
export function floorTable(rows: readonly FloorRow[], client: string): string[] {
  return [
    `| Offered/s | Processor p50 ms | Pass-through p50 ms | p50 ratio | Processor p99 ms | Pass-through p99 ms | p99 ratio |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.offered} | ${cell(r.processor_p50_ms)} | ${cell(r.passthrough_p50_ms)} | ${cell(r.p50_ratio)} | ${cell(r.processor_p99_ms)} | ${cell(r.passthrough_p99_ms)} | ${cell(r.p99_ratio)} |`),
    '',
    `Both on the ${client} Kafka client; ratio: processor / pass-through at the same offered load.`,
  ];
}

/** The chart's curves: p50 and p99 of each, against offered load; the pass-through dashed. */
export function floorSeries(rows: readonly FloorRow[]): Series[] {
  const at = (y: (r: FloorRow) => number) => rows.map((r) => ({ x: r.offered, y: y(r) }));
  return [
    { name: 'processor p50', colour: '#1f77b4', points: at((r) => r.processor_p50_ms) },
    { name: 'processor p99', colour: '#d62728', points: at((r) => r.processor_p99_ms) },
    { name: 'pass-through p50', colour: '#1f77b4', dash: '6 4', points: at((r) => r.passthrough_p50_ms) },
    { name: 'pass-through p99', colour: '#d62728', dash: '6 4', points: at((r) => r.passthrough_p99_ms) },
  ];
}
