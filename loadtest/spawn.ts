/** Spawns the processor (`node dist/cli/main.js run`) or the pass-through as processes of their own, on isolated topics. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../src/config/load-config.js';
import type { Config } from '../src/config/settings.js';
import { ensureTopics } from '../src/kafka/topics.js';
import { silentLogger } from '../src/log.js';

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const PASSTHROUGH = fileURLToPath(new URL('./passthrough.ts', import.meta.url));

/** Environment for a processor with topics and a group of its own (as test/support/harness.ts). */
export function isolatedEnv(brokers: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  const s = `${prefix}-${randomUUID().slice(0, 8)}`;
  return {
    KAFKA_BROKERS: brokers,
    GROUP_ID: `${s}`,
    TOPIC_CLICKS: `clicks-${s}`,
    TOPIC_IMAGE_VIEWS: `image-views-${s}`,
    TOPIC_REVIEWS: `reviews-${s}`,
    TOPIC_ADS: `ads-${s}`,
    TOPIC_SCORED: `scored-${s}`,
    TOPIC_SEGMENTS: `segments-${s}`,
    TOPIC_DEAD_LETTERS: `dead-letters-${s}`,
    TOPIC_CHANGELOG: `user-state-${s}`,
    TOPIC_PARTITIONS: '3',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export function kafkaClient(brokers: string): Kafka {
  return new Kafka({ clientId: 'adstream-loadtest', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
}

export async function createTopicsFor(kafka: Kafka, env: Record<string, string>): Promise<Config> {
  const config = loadConfig({ env });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config, silentLogger);
  } finally {
    await admin.disconnect();
  }
  return config;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface Spawned {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
  output(): string;
  /** Polls /readyz (processor) until 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

function spawned(args: string[], env: Record<string, string>, port: number): Spawned {
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env, HTTP_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    port,
    exited,
    output: () => out,
    async waitReady(timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`process exited with ${proc.exitCode}:\n${out}`);
        if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`not ready after ${timeoutMs} ms:\n${out}`);
    },
    async stop(graceMs = 20_000) {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The processor as operators run it. */
export async function spawnProcessor(env: Record<string, string>): Promise<Spawned> {
  return spawned([MAIN, 'run'], env, await freePort());
}

/** The Kafka pass-through (loadtest/passthrough.ts), through tsx's loader. */
export async function spawnPassThrough(env: Record<string, string>): Promise<Spawned> {
  return spawned(['--import', 'tsx', PASSTHROUGH], env, await freePort());
}
