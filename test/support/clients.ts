/**
 * The Kafka client libraries the integration suite runs the processor on (KAFKA_CLIENT in its
 * environment): kafkajs always, the Confluent client when its optional package is installed and
 * loads. When it does not, its runs are skipped with the reason in their name, never passed.
 * TEST_KAFKA_CLIENTS=kafkajs (or confluent) limits a run to one of them.
 */
import { createRequire } from 'node:module';
import { KAFKA_CLIENTS, type KafkaClientKind } from '../../src/adapters/kafka/client.js';
import { PACKAGE } from '../../src/adapters/kafka/confluent-client.js';

export interface ClientUnderTest {
  readonly kind: KafkaClientKind;
  /** Why its tests are skipped; null when they run. */
  readonly skipped: string | null;
  /** Goes into the describe's name: the client, and the reason when skipped. */
  readonly title: string;
  /** What the processor's environment gets to run on it. */
  readonly env: Readonly<Record<string, string>>;
}

/** Whether the optional package loads here (its native binding included): null, or why not. */
function confluentMissing(): string | null {
  try {
    const m = createRequire(import.meta.url)(PACKAGE) as { KafkaJS?: unknown };
    return m.KafkaJS ? null : `${PACKAGE} has no KafkaJS export`;
  } catch (err) {
    return `${PACKAGE} is not installed or did not build (${(err as Error).message.split('\n')[0]}); install with CKJS_LINKING=dynamic npm ci`;
  }
}

function chosen(): ReadonlySet<string> {
  const list = process.env['TEST_KAFKA_CLIENTS']?.split(',').map((s) => s.trim()).filter(Boolean);
  return new Set(list && list.length > 0 ? list : KAFKA_CLIENTS);
}

export function clientsUnderTest(): ClientUnderTest[] {
  const wanted = chosen();
  return KAFKA_CLIENTS.map((kind) => {
    const skipped = !wanted.has(kind) ? 'not in TEST_KAFKA_CLIENTS' : kind === 'confluent' ? confluentMissing() : null;
    return { kind, skipped, title: skipped ? `[KAFKA_CLIENT=${kind}: SKIPPED, ${skipped}]` : `[KAFKA_CLIENT=${kind}]`, env: { KAFKA_CLIENT: kind } };
  });
}
