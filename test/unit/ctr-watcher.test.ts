/**
 * The processor picks up trained CTR versions from MODEL_DIR/ctr/ while running: the newest is
 * checked and swapped in, outputs then carry its name; a corrupt file or a version that does not
 * reproduce its held-back sample is refused (log line + metric hook) and the old one keeps serving.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { watchCtrVersions } from '../../src/app/ctr-watcher.js';
import { CTR_REVISION } from '../../src/models/graphs/ctr.js';
import { runCtrTraining } from '../../src/training/ctr/training-run.js';
import { DEFAULT_TRAINING } from '../../src/training/ctr/trainer.js';
import { createLogger } from '../../src/util/log.js';
import { generateExamples } from '../support/ctr-examples.js';
import { CoreDriver } from './core-driver.js';

const driver = new CoreDriver();
const modelDir = mkdtempSync(join(tmpdir(), 'adstream-ctr-watch-'));
afterAll(async () => {
  await driver.close();
  rmSync(modelDir, { recursive: true, force: true });
});
const SLOW = 120_000;

describe('CTR model versions swapped into a running processor', () => {
  it('swaps in the newest trained version, refuses a corrupt one and one failing its check, the old keeps serving', async () => {
    const { core, rec } = await driver.coreWithCatalog();
    const F = core.users.dim;
    const first = await core.processor.process([rec.click('swap-a', 'toys')]);
    expect(first.scored[0]!.modelVersion.endsWith(`/${CTR_REVISION}`)).toBe(true);

    const file = join(modelDir, 'examples.jsonl');
    writeFileSync(file, generateExamples(600, F, 21).records.map((r) => JSON.stringify(r)).join('\n'));
    const trained = await runCtrTraining({ ...DEFAULT_TRAINING, hidden: 8, maxEpochs: 2, files: [file], validationShare: 0.25, modelDir, say: () => undefined });

    const logged: string[] = [];
    const swaps: string[] = [];
    const watcher = watchCtrVersions({
      modelDir, intervalMs: 0, engine: core.engine, serving: core.processor.serving,
      logger: createLogger('info', {}, (line) => logged.push(line)),
      onSwap: (result, version) => swaps.push(`${result} ${version}`),
    });
    await watcher.poll();
    expect(swaps).toEqual([`swapped ${first.scored[0]!.modelVersion.replace(CTR_REVISION, trained.version)}`]);
    const after = await core.processor.process([rec.click('swap-b', 'toys')]);
    expect(after.scored[0]!.modelVersion.endsWith(`/${trained.version}`)).toBe(true);
    expect(core.engine.spec('ctr')!.path).toContain(trained.version);

    // A newer version whose model file is cut short.
    const src = join(modelDir, 'ctr', trained.version);
    const corrupt = join(modelDir, 'ctr', 'ctr-trained-29990101T000000Z-corrupt');
    cpSync(src, corrupt, { recursive: true });
    const bytes = readFileSync(join(corrupt, 'ctr.onnx'));
    writeFileSync(join(corrupt, 'ctr.onnx'), bytes.subarray(0, bytes.length >> 1));
    await watcher.poll();
    expect(swaps.at(-1)).toMatch(/^refused .*\/ctr-trained-\d+T\d+Z-[0-9a-f]+$/);
    expect(logged.some((l) => l.includes('CTR model version refused') && l.includes('corrupt'))).toBe(true);
    const still = await core.processor.process([rec.click('swap-c', 'garden')]);
    expect(still.scored[0]!.modelVersion.endsWith(`/${trained.version}`)).toBe(true);

    // A newer version whose held-back sample the model does not reproduce.
    const wrong = join(modelDir, 'ctr', 'ctr-trained-29990102T000000Z-wrong');
    cpSync(src, wrong, { recursive: true });
    const check = JSON.parse(readFileSync(join(wrong, 'check.json'), 'utf8')) as { expected: number[] };
    check.expected = check.expected.map((p) => (p > 0.5 ? p - 0.3 : p + 0.3));
    writeFileSync(join(wrong, 'check.json'), JSON.stringify(check));
    await watcher.poll();
    expect(logged.some((l) => l.includes('held-back sample expects'))).toBe(true);
    // Refused versions are not retried.
    await watcher.poll();
    expect(swaps.map((s) => s.split(' ')[0])).toEqual(['swapped', 'refused', 'refused']);
    const last = await core.processor.process([rec.click('swap-d', 'books')]);
    expect(last.scored[0]!.modelVersion.endsWith(`/${trained.version}`)).toBe(true);
    await watcher.stop();
  }, SLOW);
});
