/**
 * The processor as operators run it (`node dist/app/cli.js run`), spawned as a process of its own
 * on topics and a consumer group of its own: for the benchmark (loadtest/) and the integration tests
 * (which import it from here: only they use it).
 * Needs `npm run build` first.
 */
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KafkaClient } from '../src/adapters/kafka/port.js';
import { ensureTopics } from '../src/adapters/kafka/topics.js';
import { loadConfig } from '../src/app/config/load-config.js';
import type { Config } from '../src/app/config/settings.js';
import { freePort } from '../src/devtools/guarded-process.js';
import { spawnNode, type Spawned, type SpawnOptions } from '../src/devtools/node-process.js';
import { silentLogger } from '../src/util/log.js';

export { freePort, spawnNode, type Spawned, type SpawnOptions };

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

/** The processor as operators run it: `node dist/app/cli.js run`, a process of its own. */
export function spawnProcessor(env: Record<string, string>, opts: SpawnOptions = {}): Promise<Spawned> {
  const stateDir = opts.stateDir ?? join(env.STATE_DIR ?? join(tmpdir(), 'adstream-state'), `instance-${randomUUID().slice(0, 8)}`);
  return spawnNode([MAIN, 'run'], { ...env, STATE_DIR: stateDir }, opts);
}
