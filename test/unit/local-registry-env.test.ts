import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ensureRegistryBuild } from '../../src/devtools/local-registry.js';
import { EnvironmentError } from '../../src/domain/errors.js';

const saved: Record<string, string | undefined> = {};
let dir: string;

beforeEach(() => {
  for (const k of ['PATH', 'XDG_CACHE_HOME']) saved[k] = process.env[k];
  dir = mkdtempSync(join(tmpdir(), 'no-javac-'));
  // A Maven that answers -v, and no javac: a machine with a JRE only. An empty cache: a first build.
  writeFileSync(join(dir, 'mvn'), '#!/bin/sh\necho "Apache Maven (stand-in)"\n');
  chmodSync(join(dir, 'mvn'), 0o755);
  process.env['PATH'] = dir;
  process.env['XDG_CACHE_HOME'] = join(dir, 'cache');
});

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the first registry build without javac throws EnvironmentError saying what to install', async () => {
  const err: unknown = await ensureRegistryBuild().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnvironmentError);
  const message = (err as Error).message;
  expect(message).toMatch(/javac not found/);
  expect(message).toMatch(/openjdk-17-jdk-headless/);
  expect(message).toContain('SCHEMA_REGISTRY_URL');
});
