/**
 * The Kafka client stays behind its port: in src/, only the kafkajs implementation of the port
 * imports kafkajs, and the adapters, devtools and app import nothing above their layer.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { folderOf, importsOf, upwardImports } from '../support/import-graph.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('Kafka port layout', () => {
  const edges = importsOf(ROOT);

  it('only the kafkajs implementation of the port imports kafkajs', () => {
    const importers = [...new Set(edges.filter((e) => e.spec === 'kafkajs' || e.spec.startsWith('kafkajs/')).map((e) => e.from))].sort();
    expect(importers).toEqual(['adapters/kafka/co-partitioned-assigner.ts', 'adapters/kafka/kafkajs-client.ts']);
  });

  it('adapters, devtools and app import only from lower layers (adapters not from each other)', () => {
    const watched = new Set(['adapters/kafka', 'adapters/http', 'adapters/memory', 'devtools', 'app']);
    const up = upwardImports(edges).filter((e) => watched.has(folderOf(e.from)));
    expect(up.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });
});
