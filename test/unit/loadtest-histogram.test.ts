import { describe, expect, it } from 'vitest';
import { LogLinearHistogram } from '../../loadtest/histogram.js';
import { seededRandom } from '../../src/util/random.js';

function exact(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

describe('LogLinearHistogram', () => {
  it('reports every percentile within its relative error bound of the exact nearest-rank value', () => {
    const rand = seededRandom(1);
    for (const dist of ['uniform', 'lognormal', 'bimodal'] as const) {
      const h = new LogLinearHistogram(0.01, 3_600_000, 7);
      const xs = new Float64Array(100_000);
      for (let i = 0; i < xs.length; i++) {
        const u = rand();
        xs[i] = dist === 'uniform' ? 1 + u * 999 : dist === 'lognormal' ? Math.exp(3 + 1.5 * Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * rand())) : u < 0.9 ? 5 + rand() * 10 : 800 + rand() * 4000;
        h.record(xs[i]!);
      }
      const sorted = xs.slice().sort();
      for (const q of [0.5, 0.9, 0.99, 0.999]) {
        const want = exact(sorted, q);
        const got = h.percentile(q);
        expect(Math.abs(got - want) / want, `${dist} q=${q}: ${got} vs ${want}`).toBeLessThanOrEqual(h.relativeError + 1e-12);
      }
      expect(h.percentile(1)).toBe(sorted[sorted.length - 1]);
      expect(h.total).toBe(xs.length);
    }
  });

  it('keeps min and max exact, merges, and summarises', () => {
    const a = new LogLinearHistogram();
    const b = new LogLinearHistogram();
    for (let i = 1; i <= 100; i++) a.record(i);
    b.record(12345.6);
    a.merge(b);
    expect(a.total).toBe(101);
    expect(a.max).toBe(12345.6);
    expect(a.min).toBe(1);
    const s = a.summary();
    expect(s.max).toBe(12345.6);
    expect(Math.abs(s.p50 - 51) / 51).toBeLessThanOrEqual(a.relativeError);
    expect(new LogLinearHistogram().percentile(0.5)).toBeNaN();
  });

  it('bounds its error at 2^-(p+1)', () => {
    expect(new LogLinearHistogram(0.01, 1000, 7).relativeError).toBeCloseTo(1 / 256);
    expect(new LogLinearHistogram(0.01, 1000, 4).relativeError).toBeCloseTo(1 / 32);
  });
});
