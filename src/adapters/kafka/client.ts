/**
 * The client libraries behind the port (./port.ts), chosen by KAFKA_CLIENT. kafkajs is the default
 * (and what tools without a Config use); the Confluent client loads its optional package only when
 * it is first used, so a missing install fails only where it is selected.
 */
import { createConfluentClient } from './confluent-client.js';
import { createKafkajsClient } from './kafkajs-client.js';
import type { KafkaClientFactory } from './port.js';

export const KAFKA_CLIENTS = ['kafkajs', 'confluent'] as const;
export type KafkaClientKind = (typeof KAFKA_CLIENTS)[number];

const FACTORIES: Readonly<Record<KafkaClientKind, KafkaClientFactory>> = { kafkajs: createKafkajsClient, confluent: createConfluentClient };

export function kafkaClientFactory(kind: KafkaClientKind): KafkaClientFactory {
  return FACTORIES[kind];
}

export const createKafkaClient: KafkaClientFactory = createKafkajsClient;
