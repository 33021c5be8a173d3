/**
 * The client library behind the port (./port.ts) that everything uses unless told otherwise: the
 * one line to change, or to make a setting, when another implementation is added.
 */
import { createKafkajsClient } from './kafkajs-client.js';
import type { KafkaClientFactory } from './port.js';

export const createKafkaClient: KafkaClientFactory = createKafkajsClient;
