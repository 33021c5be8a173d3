/**
 * The processor as operators run it (`node dist/app/cli.js run`), spawned as a process of its own
 * on topics and a consumer group of its own: for the benchmark (loadtest/) and the integration tests
 * (which import it from here: only they use it).
 * Needs `npm run build` first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KafkaClient } from '../src/adapters/kafka/port.js';
import { ensureTopics } from '../src/adapters/kafka/topics.js';
import { loadConfig } from '../src/app/config/load-config.js';
import type { Config } from '../src/app/config/settings.js';
import { freePort } from '../src/devtools/guarded-process.js';
import { silentLogger } from '../src/util/log.js';

export { freePort };

// The built CLI (run from source by tsx and vitest, so relative to loadtest/).
const MAIN = fileURLToPath(new URL('../dist/app/cli.js', import.meta.url));

/** Environment for a processor with topics and a group of its own (`<prefix>-<random>`), so runs never see each other. */
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
    TOPIC_USER_DELETIONS: `user-deletions-${s}`,
    TOPIC_AD_FEEDBACK: `ad-feedback-${s}`,
    TOPIC_TRAINING_EXAMPLES: `training-examples-${s}`,
    TOPIC_PARTITIONS: '3',
    LOG_LEVEL: 'warn',
    // Local state stores under a folder of the run's own (spawnProcessor gives each process one below it).
    STATE_DIR: join(tmpdir(), `adstream-state-${s}`),
    ...extra,
  };
}

/** Creates the processor's topics up front, as an operator would before producing to them. */
export async function createTopics(kafka: KafkaClient, config: Config): Promise<void> {
  const admin = await kafka.admin();
  try {
    await ensureTopics(admin, config, silentLogger);
  } finally {
    await admin.disconnect();
  }
}

/** The config of `env`, with its topics created. */
export async function createTopicsFor(kafka: KafkaClient, env: Record<string, string>): Promise<Config> {
  const config = loadConfig({ env });
  await createTopics(kafka, config);
  return config;
}

export interface Spawned {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
  /** What it wrote on stdout and stderr (the last `outputChars`, if set). */
  output(): string;
  /** Polls /readyz until 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /**
   * The process's STATE_DIR. Default: a folder of its own below the env's STATE_DIR (one local
   * store per instance); give the same folder again to restart on a store that survived.
   */
  readonly stateDir?: string;
  /** Names the process in errors. Default 'processor'. */
  readonly name?: string;
  /** Keep only the last this many characters of its output. Default: all of it. */
  readonly outputChars?: number;
  /** waitReady()'s default timeout. Default 60 s. */
  readonly readyTimeoutMs?: number;
}

/** `node <args>` with `env` on top of ours and HTTP_PORT a free port. */
export async function spawnNode(args: readonly string[], env: Record<string, string>, opts: SpawnOptions = {}): Promise<Spawned> {
  const name = opts.name ?? 'processor';
  const port = await freePort();
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env, HTTP_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (opts.outputChars !== undefined) out = out.slice(-opts.outputChars);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    port,
    exited,
    output: () => out,
    async waitReady(timeoutMs = opts.readyTimeoutMs ?? 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}:\n${out}`);
        if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`${name} not ready after ${timeoutMs} ms:\n${out}`);
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

/** The processor as operators run it: `node dist/app/cli.js run`, a process of its own. */
export function spawnProcessor(env: Record<string, string>, opts: SpawnOptions = {}): Promise<Spawned> {
  const stateDir = opts.stateDir ?? join(env.STATE_DIR ?? join(tmpdir(), 'adstream-state'), `instance-${randomUUID().slice(0, 8)}`);
  return spawnNode([MAIN, 'run'], { ...env, STATE_DIR: stateDir }, opts);
}
