import { describe, expect, it } from 'vitest';
import { categoryOf, summariseProfiles, summaryMarkdown, threadOfProfileFile, type CpuProfile } from '../../loadtest/cpu-profile.js';

const ROOT = '/repo/';
const frame = (id: number, functionName: string, url = '', lineNumber = -1) => ({ id, callFrame: { functionName, url, lineNumber, columnNumber: 0 } });

/**
 * A hand-written profile: samples every 1000 µs from t = 10,000 µs, except that the next one
 * after GC's (at 13,000) comes 5000 µs later. Node 2 (the fold) is hit 4 times, the kafkajs decoder
 * 3, GC 1 (5 ms), idle 2.
 */
const profile: CpuProfile = {
  nodes: [
    frame(1, '(root)'),
    frame(2, 'fold', 'file:///repo/dist/pipeline/fold.js', 41),
    frame(3, 'decodeMessages', 'file:///work/main/node_modules/kafkajs/src/protocol/decoder.js', 9),
    frame(4, '(garbage collector)'),
    frame(5, '(idle)'),
    // The same function as node 2, reached by another stack: counted together.
    frame(6, 'fold', 'file:///repo/dist/pipeline/fold.js', 41),
  ],
  startTime: 9_000,
  endTime: 24_500,
  samples: [2, 3, 2, 4, 3, 5, 5, 6, 3, 2],
  timeDeltas: [1000, 1000, 1000, 1000, 5000, 1000, 1000, 1000, 1000, 1000],
};

describe('CPU profile summary', () => {
  it('counts each sample until the next one (the last until endTime) and merges frames of one function', () => {
    const s = summariseProfiles([profile], { root: ROOT });
    // 8 samples of 1 ms, GC's of 5 ms, and the last (at 23,000) until endTime 24,500: 1.5 ms.
    expect(s.sampledMs).toBe(14.5);
    expect(s.top.map((f) => [f.name, f.location, f.selfMs])).toEqual([
      ['(garbage collector)', '', 5],
      ['fold', 'dist/pipeline/fold.js:42', 4.5],
      ['decodeMessages', 'node_modules/kafkajs/src/protocol/decoder.js:10', 3],
    ]);
    expect(s.busyPercent).toBe(86.21);
    expect(s.categories['pipeline other']).toBe(31.03);
    expect(s.categories['kafka client']).toBe(20.69);
    expect(s.categories.gc).toBe(34.48);
    expect(s.categories.idle).toBe(13.79);
    expect(Object.values(s.categories).reduce((a, b) => a + b, 0)).toBeCloseTo(100, 1);
  });

  it('keeps only the part of the samples inside the window', () => {
    // The window [12,500, 19,000) holds half of the fold's sample at 12,000, GC's (13,000-18,000) and kafkajs's at 18,000.
    const s = summariseProfiles([profile], { fromUs: 12_500, toUs: 19_000, root: ROOT });
    expect(s.sampledMs).toBe(6.5);
    expect(s.top.map((f) => [f.name, f.selfMs])).toEqual([['(garbage collector)', 5], ['decodeMessages', 1], ['fold', 0.5]]);
  });

  it('merges several threads, and lists at most `top` functions', () => {
    const s = summariseProfiles([profile, profile], { top: 1, root: ROOT });
    expect(s.profiles).toBe(2);
    expect(s.sampledMs).toBe(29);
    expect(s.top).toHaveLength(1);
    expect(s.top[0]!.selfMs).toBe(10); // GC's, of both
  });

  it('sorts frames into categories by library and by project module', () => {
    expect(categoryOf('x', 'file:///a/node_modules/avsc/lib/types.js')).toBe('avro');
    expect(categoryOf('x', 'file:///r/dist/serde/avro-codec.js')).toBe('avro');
    expect(categoryOf('x', 'file:///a/node_modules/@confluentinc/kafka-javascript/lib/x.js')).toBe('kafka client');
    expect(categoryOf('x', 'file:///a/node_modules/lmdb/read.js')).toBe('state');
    expect(categoryOf('x', 'file:///r/dist/state/user-state-store.js')).toBe('state');
    expect(categoryOf('x', 'file:///r/dist/pipeline/rank.js')).toBe('ranking');
    expect(categoryOf('x', 'file:///r/dist/pipeline/retrieve.js')).toBe('ranking');
    expect(categoryOf('x', 'file:///r/dist/catalog/catalog.js')).toBe('ranking');
    expect(categoryOf('x', 'file:///r/dist/pipeline/emit-policy.js')).toBe('pipeline other');
    expect(categoryOf('x', 'file:///r/dist/inference/worker-pool.js')).toBe('inference I/O');
    expect(categoryOf('postMessage', 'node:internal/worker/io')).toBe('inference I/O');
    expect(categoryOf('postMessage', '')).toBe('inference I/O'); // the native call, where the structured clone runs
    expect(categoryOf('x', 'file:///a/node_modules/onnxruntime-node/dist/backend.js')).toBe('inference compute');
    expect(categoryOf('x', 'file:///r/dist/adapters/kafka/sink.js')).toBe('project other');
    expect(categoryOf('x', 'file:///a/node_modules/prom-client/lib/x.js')).toBe('node internals and other');
    expect(categoryOf('(program)', '')).toBe('node internals and other');
    expect(categoryOf('x', 'node:internal/streams/readable')).toBe('node internals and other');
    // A library's own folder named like a project module is still that library's.
    expect(categoryOf('x', 'file:///a/node_modules/kafkajs/src/state/x.js')).toBe('kafka client');
  });

  it('reads the thread from --cpu-prof file names (0: the main thread)', () => {
    expect(threadOfProfileFile('CPU.20261201.120201.10837.0.001.cpuprofile')).toBe(0);
    expect(threadOfProfileFile('CPU.20261201.120201.10837.3.004.cpuprofile')).toBe(3);
    expect(threadOfProfileFile('profile.json')).toBeUndefined();
  });

  it('renders the top functions and every category as markdown tables', () => {
    const md = summaryMarkdown('Main thread', summariseProfiles([profile], { root: ROOT }));
    expect(md).toContain('| 2 | `fold` | `dist/pipeline/fold.js:42` | pipeline other | 31.03 |');
    expect(md).toContain('| kafka client | 20.69 |');
    expect(md).toContain('86.21 % of it busy');
  });
});
