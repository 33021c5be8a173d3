/**
 * The lineage audit of the delivery tests: every input record (read back from the input topics) must
 * be in a scored output's eventIds or in the dead-letter topic (by its source position).
 */
import type { ScoredOutput } from '../../src/domain/outputs.js';
import type { Config } from '../../src/app/config/settings.js';
import { codec, type ReadRecord } from './harness.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const DEAD = Accepts.deadLetter;
const EVENT_SCHEMAS = Accepts.events;

export interface AuditResult {
  /** Input records read back from the input topics. */
  readonly inputs: number;
  /** Positions (topic/partition/offset) of inputs in no output and no dead letter. */
  readonly lost: string[];
  /** Extra appearances of event ids in scored outputs (an event in 3 outputs counts 2). */
  readonly duplicates: number;
  /** Scored outputs read. */
  readonly scoredOutputs: number;
  /** Source positions of the dead letters read. */
  readonly deadLetterPositions: string[];
}

export function auditLineage(config: Config, inputs: readonly ReadRecord[], outputs: readonly ReadRecord[]): AuditResult {
  const lineage = new Map<string, number>();
  let scoredOutputs = 0;
  for (const r of outputs) {
    if (r.topic !== config.topicScored || r.value === null) continue;
    scoredOutputs++;
    for (const id of codec.decode<ScoredOutput>(r.value, SCORED).value.eventIds) lineage.set(id, (lineage.get(id) ?? 0) + 1);
  }
  const dead = new Set(
    outputs
      .filter((x) => x.topic === config.topicDeadLetters && x.value !== null)
      .map((x) => codec.decode<{ sourceTopic: string; sourcePartition: number; sourceOffset: number }>(x.value, DEAD).value)
      .map((d) => `${d.sourceTopic}/${d.sourcePartition}/${d.sourceOffset}`),
  );
  const lost: string[] = [];
  for (const r of inputs) {
    const pos = `${r.topic}/${r.partition}/${r.offset}`;
    if (dead.has(pos)) continue;
    let id: string | undefined;
    try {
      id = codec.decode<{ eventId: string }>(r.value, EVENT_SCHEMAS).value.eventId;
    } catch {
      id = undefined;
    }
    if (id === undefined || !lineage.has(id)) lost.push(pos);
  }
  let duplicates = 0;
  for (const n of lineage.values()) duplicates += n - 1;
  return { inputs: inputs.length, lost, duplicates, scoredOutputs, deadLetterPositions: [...dead] };
}
