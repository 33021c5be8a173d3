/**
 * The lineage audit of the delivery tests: every input record (read back from the input topics) must
 * be in a scored output's eventIds or in the dead-letter topic (by its source position), and a dead
 * letter only where the input deserved one: a record the test spoilt on purpose (its header names
 * the reason, see spoil() in traffic.ts) with exactly that reason. A dead letter of a valid record
 * (PROCESSING_FAILED under stress, say), a bad record that came out scored, or another reason than
 * the one deserved is listed in `undeserved`.
 */
import type { ScoredOutput } from '../../src/domain/outputs.js';
import type { Config } from '../../src/app/config/settings.js';
import { codec, type ReadRecord } from './harness.js';
import { DESERVED_REASON_HEADER } from './traffic.js';
import { Accepts } from '../../src/serde/record-names.js';

const SCORED = Accepts.scored;
const DEAD = Accepts.deadLetter;
const EVENT_SCHEMAS = Accepts.events;

export interface AuditResult {
  /** Input records read back from the input topics. */
  readonly inputs: number;
  /** Positions (topic/partition/offset) of inputs in no output and no dead letter. */
  readonly lost: string[];
  /**
   * Extra appearances of event ids in scored outputs beyond the input records that carry them (an
   * event in 3 outputs counts 2; one the test's producer wrote twice, by a retry after an outage,
   * may appear twice: each of its records is one input).
   */
  readonly duplicates: number;
  /** Input records beyond the first of their event id (the test producer's retries): not the processor's doing. */
  readonly duplicatedInputs: number;
  /** Scored outputs read. */
  readonly scoredOutputs: number;
  /** Source positions of the dead letters read (each once, however often it was dead-lettered). */
  readonly deadLetterPositions: string[];
  /** Dead-lettered input positions per reason code. */
  readonly deadLettersByReason: Readonly<Record<string, number>>;
  /** Inputs spoilt on purpose (the header), per the reason they deserve. */
  readonly deservedByReason: Readonly<Record<string, number>>;
  /**
   * "position: deserved X, got Y" for every input whose fate is not what it deserved: a valid
   * input dead-lettered, a spoilt one dead-lettered for another reason or scored, a dead letter of
   * no input read back. (A spoilt input in no output at all is in `lost`.)
   */
  readonly undeserved: string[];
}

interface DeadLetterRecord {
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  reason: string;
}

const positionOf = (r: ReadRecord): string => `${r.topic}/${r.partition}/${r.offset}`;

export function auditLineage(config: Config, inputs: readonly ReadRecord[], outputs: readonly ReadRecord[]): AuditResult {
  const lineage = new Map<string, number>();
  let scoredOutputs = 0;
  for (const r of outputs) {
    if (r.topic !== config.topicScored || r.value === null) continue;
    scoredOutputs++;
    for (const id of codec.decode<ScoredOutput>(r.value, SCORED).value.eventIds) lineage.set(id, (lineage.get(id) ?? 0) + 1);
  }
  // Position -> the reasons it was dead-lettered for (a replay may dead-letter it again).
  const dead = new Map<string, Set<string>>();
  for (const x of outputs) {
    if (x.topic !== config.topicDeadLetters || x.value === null) continue;
    const d = codec.decode<DeadLetterRecord>(x.value, DEAD).value;
    const pos = `${d.sourceTopic}/${d.sourcePartition}/${d.sourceOffset}`;
    const reasons = dead.get(pos) ?? new Set<string>();
    reasons.add(d.reason);
    dead.set(pos, reasons);
  }
  const lost: string[] = [];
  const undeserved: string[] = [];
  /** Event id -> the input records (not dead-lettered) that carry it. */
  const carriers = new Map<string, number>();
  const deservedByReason: Record<string, number> = {};
  const deadLettersByReason: Record<string, number> = {};
  for (const r of inputs) {
    const pos = positionOf(r);
    const deserved = r.headers?.[DESERVED_REASON_HEADER];
    if (deserved !== undefined) deservedByReason[deserved] = (deservedByReason[deserved] ?? 0) + 1;
    const reasons = dead.get(pos);
    let id: string | undefined;
    try {
      id = codec.decode<{ eventId: string }>(r.value, EVENT_SCHEMAS).value.eventId;
    } catch {
      id = undefined;
    }
    const scored = id !== undefined && lineage.has(id);
    if (id !== undefined && !reasons) carriers.set(id, (carriers.get(id) ?? 0) + 1);
    if (reasons) {
      for (const reason of reasons) deadLettersByReason[reason] = (deadLettersByReason[reason] ?? 0) + 1;
      const got = [...reasons].sort().join('+');
      if (got !== deserved) undeserved.push(`${pos}: deserved ${deserved ?? 'no dead letter (a valid record)'}, got ${got}`);
      continue;
    }
    if (!scored) lost.push(pos);
    else if (deserved !== undefined) undeserved.push(`${pos}: deserved ${deserved}, got a scored output (event ${id})`);
  }
  // A dead letter of no input read back (a catalog ad, say): none of the tests' inputs deserve one.
  const read = new Set(inputs.map(positionOf));
  for (const [pos, reasons] of dead) {
    if (read.has(pos)) continue;
    for (const reason of reasons) deadLettersByReason[reason] = (deadLettersByReason[reason] ?? 0) + 1;
    undeserved.push(`${pos}: a dead letter (${[...reasons].sort().join('+')}) of no input read back`);
  }
  let duplicates = 0;
  for (const [id, n] of lineage) duplicates += Math.max(0, n - Math.max(1, carriers.get(id) ?? 0));
  let duplicatedInputs = 0;
  for (const n of carriers.values()) duplicatedInputs += n - 1;
  return { inputs: inputs.length, lost, duplicates, duplicatedInputs, scoredOutputs, deadLetterPositions: [...dead.keys()], deadLettersByReason, deservedByReason, undeserved };
}

/** A dead letter per reason, as a `[guarantees]` line shows it: "BAD_FRAMING 3, KEY_MISMATCH 2" or "none". */
export function reasonsLine(byReason: Readonly<Record<string, number>>): string {
  const parts = Object.entries(byReason)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, n]) => `${reason} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}
