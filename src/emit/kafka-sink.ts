import type { Message, Producer } from 'kafkajs';
import type { ProcessResult } from '../core/outputs.js';
import type { OutputEncoder } from './output-encoder.js';

export interface SinkTopics {
  readonly scored: string;
  readonly deadLetters: string;
}

/**
 * Delivers the core's outputs to Kafka and resolves only when every record is acknowledged by all
 * in-sync replicas: the caller commits input offsets after that, never before.
 */
export class KafkaSink {
  constructor(
    private readonly producer: Producer,
    private readonly topics: SinkTopics,
    private readonly encoder: OutputEncoder,
  ) {}

  async deliver(result: ProcessResult): Promise<void> {
    const topicMessages: { topic: string; messages: Message[] }[] = [];
    if (result.scored.length > 0) {
      topicMessages.push({ topic: this.topics.scored, messages: result.scored.map((o) => this.encoder.scored(o)) });
    }
    if (result.deadLetters.length > 0) {
      topicMessages.push({ topic: this.topics.deadLetters, messages: result.deadLetters.map((d) => this.encoder.deadLetter(d)) });
    }
    if (topicMessages.length === 0) return;
    await this.producer.sendBatch({ acks: -1, topicMessages });
  }
}
