/**
 * Summaries of V8 CPU profiles (the .cpuprofile files `node --cpu-prof` writes, one per thread):
 * the functions with the most self time, and the share of self time by part of the processor.
 * Pure: no files, no clocks (loadtest/profile.ts reads and writes them).
 */

/** The part of a .cpuprofile this reads (Chrome DevTools protocol, Profiler.Profile). */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds, on the monotonic clock process.hrtime reads (Linux: CLOCK_MONOTONIC). */
  readonly startTime: number;
  readonly endTime: number;
  /** Per sample, the id of the node that was on top of the stack. */
  readonly samples: readonly number[];
  /** Per sample, microseconds since the previous one (the first: since startTime). */
  readonly timeDeltas: readonly number[];
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
}

/** Where self time goes, by the code it runs in (see categoryOf). */
export const CATEGORIES = ['kafka client', 'avro', 'inference I/O', 'inference compute', 'state', 'ranking', 'pipeline other', 'project other', 'gc', 'idle', 'node internals and other'] as const;
export type Category = (typeof CATEGORIES)[number];

/** Libraries by the category they count in (matched on the path below node_modules/). */
const LIBRARIES: readonly (readonly [RegExp, Category])[] = [
  [/^(kafkajs|@confluentinc\/kafka-javascript)\//, 'kafka client'],
  [/^avsc\//, 'avro'],
  [/^(onnxruntime-node|onnxruntime-common)\//, 'inference compute'],
  [/^(lmdb|msgpackr|ordered-binary|lru-cache)\//, 'state'],
];

/** The project's own modules (the path below dist/ or src/) by category; the first match wins. */
const PROJECT: readonly (readonly [RegExp, Category])[] = [
  [/^serde\//, 'avro'],
  [/^inference\//, 'inference I/O'],
  [/^models\//, 'inference compute'],
  [/^state\//, 'state'],
  [/^(pipeline\/(retrieve|rank)\.|catalog\/)/, 'ranking'],
  [/^pipeline\//, 'pipeline other'],
];

/** The category of a frame (by function name for V8's pseudo-frames, else by its script's path). */
export function categoryOf(functionName: string, url: string): Category {
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(idle)') return 'idle';
  // Worker messaging (postMessage, its structured clone) is the inference engine's: nothing else here uses worker threads.
  // (MessagePort.postMessage itself is native: no url.)
  if (url.startsWith('node:internal/worker') || (functionName === 'postMessage' && url === '')) return 'inference I/O';
  const lib = url.lastIndexOf('/node_modules/');
  if (lib >= 0) {
    const below = url.slice(lib + '/node_modules/'.length);
    return LIBRARIES.find(([re]) => re.test(below))?.[1] ?? 'node internals and other';
  }
  const own = /\/(dist|src)\/(.*)$/.exec(url);
  if (own) return PROJECT.find(([re]) => re.test(own[2]!))?.[1] ?? 'project other';
  return 'node internals and other';
}

export interface FunctionTime {
  readonly name: string;
  /** Script path from the project root (or the url as V8 gives it) and 1-based line; '' for V8's pseudo-frames. */
  readonly location: string;
  readonly category: Category;
  readonly selfMs: number;
  /** Of the thread time sampled (idle included). */
  readonly selfPercent: number;
}

export interface ThreadSummary {
  /** Profiles merged (one per thread). */
  readonly profiles: number;
  /** Thread time sampled in the window, summed over the profiles. */
  readonly sampledMs: number;
  /** Share of it not idle. */
  readonly busyPercent: number;
  /** The functions with the most self time (idle left out), most first. */
  readonly top: readonly FunctionTime[];
  /** Per category, its share of the sampled time (idle included; sums to 100). */
  readonly categories: Readonly<Record<Category, number>>;
}

export interface SummaryOptions {
  /** Only samples taken in [fromUs, toUs) on the profiles' clock count; default: all. */
  readonly fromUs?: number;
  readonly toUs?: number;
  /** How many functions `top` lists. Default 10. */
  readonly top?: number;
  /** Removed from the front of script paths (file:// and the project root). */
  readonly root?: string;
}

/**
 * Self time per function and category over one or more profiles (threads of one kind, merged).
 * A sample lasts until the next one (the last one until endTime), as DevTools counts it.
 */
export function summariseProfiles(profiles: readonly CpuProfile[], o: SummaryOptions = {}): ThreadSummary {
  const from = o.fromUs ?? Number.NEGATIVE_INFINITY;
  const to = o.toUs ?? Number.POSITIVE_INFINITY;
  const byFunction = new Map<string, { name: string; location: string; category: Category; us: number }>();
  const byCategory = new Map<Category, number>(CATEGORIES.map((c) => [c, 0]));
  let total = 0;
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      const next = i + 1 < p.samples.length ? t + (p.timeDeltas[i + 1] ?? 0) : p.endTime;
      // The part of the sample's interval inside the window.
      const us = Math.min(next, to) - Math.max(t, from);
      if (!(us > 0)) continue;
      const node = nodes.get(p.samples[i]!);
      if (!node) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const category = categoryOf(functionName, url);
      const location = url === '' ? '' : `${shortPath(url, o.root)}:${lineNumber + 1}`;
      const key = `${functionName}\u0000${location}`;
      const f = byFunction.get(key) ?? { name: functionName || '(anonymous)', location, category, us: 0 };
      f.us += us;
      byFunction.set(key, f);
      byCategory.set(category, byCategory.get(category)! + us);
      total += us;
    }
  }
  const pct = (us: number): number => (total > 0 ? round2((us / total) * 100) : 0);
  const top = [...byFunction.values()]
    .filter((f) => f.category !== 'idle')
    .sort((a, b) => b.us - a.us)
    .slice(0, o.top ?? 10)
    .map((f) => ({ name: f.name, location: f.location, category: f.category, selfMs: round2(f.us / 1000), selfPercent: pct(f.us) }));
  return {
    profiles: profiles.length,
    sampledMs: round2(total / 1000),
    busyPercent: pct(total - byCategory.get('idle')!),
    top,
    categories: Object.fromEntries(CATEGORIES.map((c) => [c, pct(byCategory.get(c)!)])) as Record<Category, number>,
  };
}

/** The thread a profile file is of, from the name --cpu-prof gives it (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile); 0 is the main thread. */
export function threadOfProfileFile(name: string): number | undefined {
  const m = /^CPU\.\d+\.\d+\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** A summary as a markdown section: the top functions, then the categories. */
export function summaryMarkdown(title: string, s: ThreadSummary): string {
  const lines = [
    `#### ${title}`,
    '',
    `${s.profiles} thread(s), ${Math.round(s.sampledMs)} ms of thread time sampled, ${s.busyPercent} % of it busy.`,
    '',
    '| # | Function | Where | Category | Self % |',
    '| --- | --- | --- | --- | --- |',
    ...s.top.map((f, i) => `| ${i + 1} | \`${f.name}\` | ${f.location ? `\`${f.location}\`` : '-'} | ${f.category} | ${f.selfPercent} |`),
    '',
    '| Category | Share of sampled time % |',
    '| --- | --- |',
    ...CATEGORIES.map((c) => `| ${c} | ${s.categories[c]} |`),
    '',
  ];
  return lines.join('\n');
}

function shortPath(url: string, root: string | undefined): string {
  let p = url.startsWith('file://') ? url.slice('file://'.length) : url;
  if (root && p.startsWith(root)) p = p.slice(root.length).replace(/^\/+/, '');
  // Only the package's own path below node_modules (the store's nesting says nothing).
  const lib = p.lastIndexOf('node_modules/');
  return lib >= 0 ? p.slice(lib) : p;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
