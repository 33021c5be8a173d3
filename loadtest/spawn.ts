/** Spawns the processor (`node dist/app/cli.js run`) or the pass-through as processes of their own, on isolated topics. */
import { fileURLToPath } from 'node:url';
import { createKafkaClient } from '../src/adapters/kafka/client.js';
import type { KafkaClient } from '../src/adapters/kafka/port.js';
import { startLocalBroker, type LocalBroker } from '../src/devtools/local-broker.js';
import { silentLogger } from '../src/util/log.js';
import { spawnNode, spawnProcessor as spawnProcessorWith, type Spawned, type SpawnOptions } from './spawn-processor.js';

export { createTopicsFor, freePort, isolatedEnv, type Spawned } from './spawn-processor.js';

const PASSTHROUGH = fileURLToPath(new URL('./passthrough.ts', import.meta.url));

/** Benchmark runs are long: keep the tail of the output only, and allow for a cold start. */
const BENCH: SpawnOptions = { outputChars: 20_000, readyTimeoutMs: 90_000 };

export function kafkaClient(brokers: string): KafkaClient {
  return createKafkaClient({ clientId: 'adstream-loadtest', brokers: brokers.split(','), logger: silentLogger });
}

/** The processor as operators run it; give `stateDir` to restart one on the state it left. */
export function spawnProcessor(env: Record<string, string>, stateDir?: string): Promise<Spawned> {
  return spawnProcessorWith(env, { ...BENCH, ...(stateDir ? { stateDir } : {}) });
}

/** The Kafka pass-through (loadtest/passthrough.ts), through tsx's loader. */
export function spawnPassThrough(env: Record<string, string>): Promise<Spawned> {
  return spawnNode(['--import', 'tsx', PASSTHROUGH], env, { ...BENCH, name: 'pass-through' });
}

/** The cluster a load test runs on: KAFKA_BROKERS when set, else a local broker started for it (stop it after). */
export async function benchBrokers(say: (s: string) => void): Promise<{ brokers: string; broker?: LocalBroker }> {
  const set = process.env.KAFKA_BROKERS;
  if (set) return { brokers: set };
  say('starting a local Apache Kafka broker (KAFKA_BROKERS is not set)...');
  const broker = await startLocalBroker();
  return { brokers: broker.bootstrap, broker };
}
