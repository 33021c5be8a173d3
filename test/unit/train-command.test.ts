import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../../src/app/train.js';
import { generateExamples } from '../support/ctr-examples.js';

const dir = mkdtempSync(join(tmpdir(), 'adstream-train-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('adstream train', () => {
  const file = join(dir, 'examples.jsonl');
  writeFileSync(file, generateExamples(200, 4, 3).records.map((r) => JSON.stringify(r)).join('\n'));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ modelDir: join(dir, 'models') }));

  it('ends with one JSON line naming the version it wrote under MODEL_DIR/ctr', async () => {
    const lines: string[] = [];
    expect(await trainCommand(['--examples', file, '--epochs', '2', '--hidden', '4', '--config', config], (l) => lines.push(l))).toBe(0);
    const result = JSON.parse(lines.at(-1)!) as { version: string };
    expect(readdirSync(join(dir, 'models', 'ctr'))).toContain(result.version);
    expect(lines.filter((l) => l.startsWith('epoch ')).length).toBeGreaterThan(0);
  });

  it('refuses a bad option before training', async () => {
    await expect(trainCommand(['--examples', file, '--lr', '7', '--config', config], () => undefined)).rejects.toThrow(/--lr/);
    await expect(trainCommand(['--config', config], () => undefined)).rejects.toThrow(/--examples/);
  });

  it('--watch retrains on a schedule, a new version each run, until stopped', async () => {
    const stop = new AbortController();
    const results: string[] = [];
    const say = (l: string): void => {
      if (!l.startsWith('{')) return;
      results.push((JSON.parse(l) as { version: string }).version);
      if (results.length === 2) stop.abort();
    };
    // Versions are named by time to the second and by weights: a new seed per run is not needed, the time differs.
    await trainCommand(['--examples', file, '--epochs', '1', '--hidden', '4', '--watch', '1', '--config', config], say, stop.signal);
    expect(results).toHaveLength(2);
    expect(new Set(results).size).toBe(2);
  }, 30_000);
});
