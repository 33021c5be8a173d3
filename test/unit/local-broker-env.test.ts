import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { startLocalBroker } from '../../src/devtools/local-broker.js';
import { EnvironmentError } from '../../src/domain/errors.js';

let savedPath: string | undefined;
let emptyDir: string;

beforeEach(() => {
  savedPath = process.env['PATH'];
  emptyDir = mkdtempSync(join(tmpdir(), 'no-java-'));
  process.env['PATH'] = emptyDir;
});

afterEach(() => {
  process.env['PATH'] = savedPath;
  rmSync(emptyDir, { recursive: true, force: true });
});

test('startLocalBroker without java on PATH throws EnvironmentError saying what to install', async () => {
  const err: unknown = await startLocalBroker().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnvironmentError);
  const message = (err as Error).message;
  expect(message).toMatch(/java/i);
  expect(message).toMatch(/openjdk-17-jre-headless/);
  expect(message).toContain('deploy/docker-compose.yml');
});
