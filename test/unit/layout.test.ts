import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { folderOf, importsOf, LAYERS, layerOf, upwardImports, type ImportEdge } from '../support/import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const edges = importsOf(ROOT);

describe('source layout', () => {
  it('puts every file of src/ in a folder of a known layer', () => {
    const unknown = [...new Set(edges.map((e) => e.from))].filter((f) => layerOf(folderOf(f)) < 0);
    expect(unknown).toEqual([]);
  });

  it('has no import that runs up a layer or sideways within one', () => {
    expect(upwardImports(edges).map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('imports the Kafka client libraries only in src/adapters/kafka', () => {
    const outside = edges.filter((e) => /^(kafkajs|@confluentinc\/kafka-javascript)(\/|$)/.test(e.spec) && folderOf(e.from) !== 'adapters/kafka');
    expect(outside.map((e) => e.from)).toEqual([]);
    // Inside it, only the kafkajs implementation of the port (and its kafkajs-only assigner).
    const importers = [...new Set(edges.filter((e) => /^kafkajs(\/|$)/.test(e.spec)).map((e) => e.from))].sort();
    expect(importers).toEqual(['adapters/kafka/co-partitioned-assigner.ts', 'adapters/kafka/kafkajs-client.ts']);
    // And only the Confluent implementation loads the Confluent package (lazily: it is optional).
    const confluent = [...new Set(edges.filter((e) => /^@confluentinc\/kafka-javascript(\/|$)/.test(e.spec)).map((e) => e.from))].sort();
    expect(confluent).toEqual(['adapters/kafka/confluent-client.ts']);
  });

  it('catches an upward and a sideways import (the check itself can fail)', () => {
    const made: ImportEdge[] = [
      { from: 'domain/events.ts', to: 'pipeline/processor.ts', spec: '../pipeline/processor.js' },
      { from: 'adapters/kafka/sink.ts', to: 'adapters/http/server.ts', spec: '../http/server.js' },
      { from: 'pipeline/processor.ts', to: 'domain/events.ts', spec: '../domain/events.js' },
    ];
    expect(upwardImports(made).map((e) => e.from)).toEqual(['domain/events.ts', 'adapters/kafka/sink.ts']);
    expect(LAYERS.flat()).toContain('pipeline');
  });
});
