/**
 * vitest globalSetup for the integration project: a real Kafka broker for the whole run.
 * KAFKA_BROKERS set (e.g. CI with deploy/docker-compose.yml, or a broker you run yourself): use it,
 * start nothing. Otherwise start a local single-node broker (src/devtools/local-broker.ts, needs
 * Java 17+ and Maven) and stop it in teardown. Tests read the address with brokersForTests().
 */
import type { TestProject } from 'vitest/node';
import { startLocalBroker } from '../../src/devtools/local-broker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const fromEnv = process.env['KAFKA_BROKERS']?.trim();
  if (fromEnv) {
    project.provide('kafkaBrokers', fromEnv);
    return undefined;
  }
  const started = Date.now();
  const broker = await startLocalBroker({ log: process.env['KAFKA_BROKER_LOG'] ? (m) => console.log(m) : undefined });
  console.log(`[global-setup] local Kafka broker at ${broker.bootstrap} ready in ${Date.now() - started} ms`);
  process.env['KAFKA_BROKERS'] = broker.bootstrap;
  project.provide('kafkaBrokers', broker.bootstrap);
  return async () => {
    await broker.stop();
    delete process.env['KAFKA_BROKERS'];
  };
}
