import { describe, expect, it } from 'vitest';
import { compareAtLoads, floorSeries, floorTable, halfLoadFloor, kafkaClientName, latencyRatio, type LatencyAtLoad } from '../../loadtest/floor-comparison.js';

const at = (offered: number, p50_ms: number, p99_ms: number): LatencyAtLoad => ({ offered, p50_ms, p99_ms });

describe('latencyRatio', () => {
  it('is processor / pass-through to 3 decimals', () => {
    expect(latencyRatio(150, 100)).toBe(1.5);
    expect(latencyRatio(200, 3)).toBe(66.667);
    expect(latencyRatio(10, 40)).toBe(0.25);
  });

  it('is null when a figure is missing or the floor is 0 (a step with no events gives NaN)', () => {
    expect(latencyRatio(Number.NaN, 10)).toBeNull();
    expect(latencyRatio(10, Number.NaN)).toBeNull();
    expect(latencyRatio(10, 0)).toBeNull();
  });
});

describe('compareAtLoads', () => {
  it('pairs steps by offered load, not by position, sorted by load', () => {
    const processor = [at(500, 50, 100), at(1000, 60, 120), at(2000, 80, 200)];
    const passthrough = [at(2000, 20, 40), at(500, 10, 25), at(1000, 12, 30)];
    const rows = compareAtLoads(processor, passthrough);
    expect(rows.map((r) => r.offered)).toEqual([500, 1000, 2000]);
    expect(rows[0]).toEqual({ offered: 500, processor_p50_ms: 50, processor_p99_ms: 100, passthrough_p50_ms: 10, passthrough_p99_ms: 25, p50_ratio: 5, p99_ratio: 4 });
    expect(rows[2]).toMatchObject({ passthrough_p50_ms: 20, p50_ratio: 4, p99_ratio: 5 });
  });

  it('pairs a repeated load (the half-load step at a sweep rate) n-th with n-th', () => {
    // The sweep's 1000/s step, then the 15 s half-load step also at 1000/s: each with its own repeat.
    const rows = compareAtLoads([at(1000, 60, 120), at(2000, 80, 200), at(1000, 64, 130)], [at(1000, 12, 30), at(2000, 20, 40), at(1000, 16, 26)]);
    expect(rows.filter((r) => r.offered === 1000).map((r) => [r.processor_p50_ms, r.passthrough_p50_ms])).toEqual([[60, 12], [64, 16]]);
  });

  it('leaves out a load only one side ran: a ratio is never taken across loads', () => {
    const rows = compareAtLoads([at(500, 50, 100), at(4000, 90, 300)], [at(500, 10, 20), at(8000, 30, 90)]);
    expect(rows.map((r) => r.offered)).toEqual([500]);
  });
});

describe('halfLoadFloor', () => {
  it("gives the pass-through's half-load figures and the ratios", () => {
    expect(halfLoadFloor(at(5000, 294, 914), at(5000, 28, 172))).toEqual({
      passthrough_p50_ms_at_half_load: 28,
      passthrough_p99_ms_at_half_load: 172,
      p50_ratio_at_half_load: 10.5,
      p99_ratio_at_half_load: 5.314,
    });
  });

  it('refuses steps at different offered loads', () => {
    expect(() => halfLoadFloor(at(5000, 294, 914), at(2500, 28, 172))).toThrow(/same offered load/);
  });
});

describe('kafkaClientName', () => {
  it("is the config's KAFKA_CLIENT setting where it has one", () => {
    expect(kafkaClientName({ kafkaClient: 'confluent' }, { KAFKA_CLIENT: 'kafkajs' })).toBe('confluent');
  });

  it("else the environment's KAFKA_CLIENT, else kafkajs", () => {
    expect(kafkaClientName({}, { KAFKA_CLIENT: 'confluent' })).toBe('confluent');
    expect(kafkaClientName({}, {})).toBe('kafkajs');
    expect(kafkaClientName({ kafkaClient: '' }, { KAFKA_CLIENT: '' })).toBe('kafkajs');
  });
});

describe('floorTable', () => {
  it('puts the two side by side per load, names the client, and shows a missing ratio as -', () => {
    const lines = floorTable(compareAtLoads([at(500, 50, 100), at(1000, 60, Number.NaN)], [at(500, 10, 25), at(1000, 0, 30)]), 'confluent');
    expect(lines).toContain('| 500 | 50 | 10 | 5 | 100 | 25 | 4 |');
    expect(lines).toContain('| 1000 | 60 | 0 | - | - | 30 | - |');
    expect(lines.join('\n')).toMatch(/confluent/);
  });
});

describe('floorSeries', () => {
  it('draws p50 and p99 of both against offered load, the pass-through dashed', () => {
    const series = floorSeries(compareAtLoads([at(2000, 80, 200), at(500, 50, 100)], [at(500, 10, 25), at(2000, 20, 40)]));
    expect(series.map((s) => [s.name, s.dash !== undefined])).toEqual([
      ['processor p50', false],
      ['processor p99', false],
      ['pass-through p50', true],
      ['pass-through p99', true],
    ]);
    expect(series[1]!.points).toEqual([{ x: 500, y: 100 }, { x: 2000, y: 200 }]);
    expect(series[2]!.points).toEqual([{ x: 500, y: 10 }, { x: 2000, y: 20 }]);
  });
});
