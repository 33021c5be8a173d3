import { inject } from 'vitest';

/** The Kafka bootstrap list for integration tests: from globalSetup (provide/inject), else KAFKA_BROKERS. */
export function brokersForTests(): string[] {
  let value: string | undefined;
  try {
    value = inject('kafkaBrokers');
  } catch {
    value = undefined; // not running under a project with the global setup
  }
  value ||= process.env['KAFKA_BROKERS'];
  if (!value) {
    throw new Error(
      'No Kafka broker for tests: run them with the integration project (vitest --project integration), ' +
        'which starts one, or set KAFKA_BROKERS=host:port.',
    );
  }
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
