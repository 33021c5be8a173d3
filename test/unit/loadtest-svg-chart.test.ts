import { describe, expect, it } from 'vitest';
import { latencyChart } from '../../loadtest/svg-chart.js';

const opts = { title: 'a <b> & c', xLabel: 'offered load (events/s)', yLabel: 'latency (ms)' };

/** The polylines' stroke, dash and points as drawn. */
function polylines(svg: string): { stroke: string; dash: string | undefined; points: [number, number][] }[] {
  return [...svg.matchAll(/<polyline fill="none" stroke="([^"]+)" stroke-width="2"(?: stroke-dasharray="([^"]+)")? points="([^"]+)"\/>/g)].map((m) => ({
    stroke: m[1]!,
    dash: m[2],
    points: m[3]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]),
  }));
}

describe('latencyChart', () => {
  const svg = latencyChart(
    [
      { name: 'processor p99', colour: '#d62728', points: [{ x: 500, y: 100 }, { x: 1000, y: 120 }, { x: 2000, y: Number.NaN }] },
      { name: 'pass-through p99', colour: '#d62728', dash: '6 4', points: [{ x: 500, y: 10 }, { x: 1000, y: 12 }] },
    ],
    opts,
  );

  it('draws one curve per series, the dashed one dashed, with a legend entry each', () => {
    const lines = polylines(svg);
    expect(lines.map((l) => [l.stroke, l.dash])).toEqual([['#d62728', undefined], ['#d62728', '6 4']]);
    expect(svg).toContain('>processor p99</text>');
    expect(svg).toContain('>pass-through p99</text>');
    // The legend's sample line carries the dash too.
    expect(svg).toMatch(/<line [^>]*stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"\/>/);
  });

  it('plots both series on one axis: same loads at the same x, the higher latency higher up, a decade apart', () => {
    const [processor, passthrough] = polylines(svg);
    expect(processor!.points.length).toBe(2); // the NaN point is left out
    expect(processor!.points.map((p) => p[0])).toEqual(passthrough!.points.map((p) => p[0]));
    const [p500, f500] = [processor!.points[0]!, passthrough!.points[0]!];
    expect(p500[1]).toBeLessThan(f500[1]); // SVG y grows downwards
    // Log scale: 100 ms vs 10 ms is one decade, the same height as 120 vs 12.
    expect(f500[1] - p500[1]).toBeCloseTo(passthrough!.points[1]![1] - processor!.points[1]![1], 0);
  });

  it('escapes the labels', () => {
    expect(svg).toContain('a &lt;b&gt; &amp; c');
  });
});
