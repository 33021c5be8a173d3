import { describe, expect, it } from 'vitest';
import { rejection } from '../support/rejection.js';
import type { AdFeedback, InputRecord } from '../../src/domain/events.js';
import { Attributor, heldKey, MAX_LABELS_PER_USER, trainingExampleValue, type AttributionLimits, type ServedFeatures } from '../../src/pipeline/attribution.js';
import { attributionRecords, attributionState } from '../../src/pipeline/attribution-records.js';
import { packExamples, type TrainingExampleRecord } from '../../src/training/ctr/examples.js';
import { Accepts, RecordNames } from '../../src/serde/record-names.js';
import { EventDecoder } from '../../src/pipeline/decode.js';
import { AvroCodec } from '../../src/serde/avro-codec.js';

const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);
const FEEDBACK = 'dev.adstream.feedback.AdFeedback';
const codec = new AvroCodec();
const decoder = new EventDecoder(codec, { maxRecordBytes: 64 * 1024, maxTextChars: 200, maxClockSkewMs: 5 * 60_000, maxEventAgeMs: 30 * 24 * 3_600_000 });
const good = { feedbackId: 'fb-1', userId: 'user-42', adId: 'ad-7', outputId: 'out-1', position: 2, kind: 'CLICK', eventTime: NOW - 1000 };
const rec = (value: Buffer, key: string | null = 'user-42'): InputRecord => ({ topic: 'ad-feedback', partition: 0, offset: '0', key: key === null ? null : Buffer.from(key), value, timestamp: NOW });

describe('ad-feedback decoding', () => {
  it('decodes a valid report, trimming ids and reading an empty outputId as unknown', () => {
    expect(decoder.decodeFeedback(rec(codec.encode(FEEDBACK, good)), NOW)).toEqual({ ...good, kind: 'CLICK' });
    const noOutput = decoder.decodeFeedback(rec(codec.encode(FEEDBACK, { ...good, outputId: '  ', adId: ' ad-7 ' })), NOW);
    expect(noOutput.outputId).toBeNull();
    expect(noOutput.adId).toBe('ad-7');
  });

  it.each([
    ['a key other than the user id', rec(codec.encode(FEEDBACK, good), 'someone-else'), 'KEY_MISMATCH'],
    ['no key', rec(codec.encode(FEEDBACK, good), null), 'KEY_MISMATCH'],
    ['an empty ad id', rec(codec.encode(FEEDBACK, { ...good, adId: ' ' })), 'INVALID_FIELD'],
    ['a negative position', rec(codec.encode(FEEDBACK, { ...good, position: -1 })), 'INVALID_FIELD'],
    ['an event time in the future', rec(codec.encode(FEEDBACK, { ...good, eventTime: NOW + 3_600_000 })), 'INVALID_FIELD'],
    ['a click event on the feedback topic', rec(codec.encode('dev.adstream.events.ClickEvent', { eventId: 'e', userId: 'user-42', itemId: 'i', categoryId: 'c', action: 'CLICK', eventTime: NOW, sessionId: null })), 'WRONG_SCHEMA'],
    ['a truncated body', rec(codec.encode(FEEDBACK, good).subarray(0, 12)), 'DECODE_FAILED'],
  ])('rejects %s with a reason (%s)', (_what, r, reason) => {
    expect(rejection(() => decoder.decodeFeedback(r, NOW)).reason).toBe(reason);
  });
});

const W = 60_000;
const LIMITS: AttributionLimits = { windowMs: W, maxCaptures: 100, maxPending: 100, maxWaitingClicks: 100 };
const T0 = 1_700_000_000_000;
let seq = 0;
const fb = (kind: AdFeedback['kind'], at: number, o: Partial<AdFeedback> = {}): AdFeedback => ({ feedbackId: `fb-${seq++}`, userId: 'u1', adId: 'ad-1', outputId: 'out-1', position: 0, kind, eventTime: at, ...o });
const served = (outputId: string, servedAt: number, value: number, o: Partial<ServedFeatures> = {}): ServedFeatures => ({
  outputId, userId: 'u1', adId: 'ad-1', servedAt, modelVersion: 'm1', servedCtr: 0.01, interest: Float32Array.of(value, 0), ad: Float32Array.of(0, 1), ...o,
});
/** Moves the watermark to `at` with a report about an unrelated user. */
/** The attributor as a restart brings it back: its changes as changelog records, compacted (latest per key), read back. */
const restarted = (a: Attributor): Attributor => {
  const kept = new Map<string, Buffer>();
  for (const r of attributionRecords(0, a.takeChanges())) {
    if (r.value) kept.set(r.key, r.value);
    else kept.delete(r.key);
  }
  return Attributor.restore(attributionState(kept), LIMITS);
};
const tick = (a: Attributor, at: number): void => a.feedback(fb('CONVERSION', at, { userId: 'other' }));

describe('attribution in event time', () => {
  it('a click within the window of its impression is a positive, with the features the ad was served with', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.25));
    // The user's state moves on and the next output offers the ad again with other features.
    a.serve(served('out-2', T0 + 10, 0.75));
    a.feedback(fb('IMPRESSION', T0 + 100, { feedbackId: 'imp-1' }));
    a.feedback(fb('CLICK', T0 + 100 + W));
    const [e, ...rest] = a.drain();
    expect(rest).toEqual([]);
    expect(e).toMatchObject({ exampleId: 'imp-1', label: 1, outputId: 'out-1', servedAt: T0 + 100, modelVersion: 'm1' });
    expect(Array.from(e!.interest)).toEqual([0.25, 0]);
    expect(a.counts).toMatchObject({ impressions: 1, clicks: 1, positives: 1, negatives: 0 });
  });

  it('an impression without a click is a negative once the watermark passes its window, not before', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.5));
    a.feedback(fb('IMPRESSION', T0));
    tick(a, T0 + W);
    expect(a.drain()).toEqual([]);
    tick(a, T0 + W + 1);
    expect(a.drain().map((e) => e.label)).toEqual([0]);
    expect(a.counts.negatives).toBe(1);
  });

  it('a click after the window is late: the impression is a negative and the click is counted, not used', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.5));
    a.feedback(fb('IMPRESSION', T0));
    a.feedback(fb('CLICK', T0 + W + 1));
    expect(a.drain().map((e) => e.label)).toEqual([0]);
    // A click inside the window that arrives after the impression was labelled negative.
    a.feedback(fb('CLICK', T0 + W - 5));
    expect(a.drain()).toEqual([]);
    expect(a.counts).toMatchObject({ positives: 0, negatives: 1, late: 1 });
    // An impression whose whole window is behind the watermark when it arrives.
    a.serve(served('out-9', T0, 0.5));
    a.feedback(fb('IMPRESSION', T0, { outputId: 'out-9' }));
    expect(a.counts.late).toBe(2);
  });

  it('duplicates: a re-sent report, a second impression of one showing, a second click are counted once', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.5));
    const imp = fb('IMPRESSION', T0);
    a.feedback(imp);
    a.feedback(imp);
    a.feedback(fb('IMPRESSION', T0 + 5));
    const click = fb('CLICK', T0 + 10);
    a.feedback(click);
    a.feedback(click);
    a.feedback(fb('CLICK', T0 + 20));
    expect(a.drain().map((e) => e.label)).toEqual([1]);
    expect(a.counts).toMatchObject({ duplicates: 4, positives: 1, late: 0 });
  });

  it('out of order: a click that arrives before its impression labels it when the impression comes', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.5));
    a.feedback(fb('CLICK', T0 + 30));
    expect(a.drain()).toEqual([]);
    a.feedback(fb('IMPRESSION', T0 + 20, { feedbackId: 'imp-ooo' }));
    expect(a.drain().map((e) => [e.exampleId, e.label])).toEqual([['imp-ooo', 1]]);
    // A click that never meets its impression is dropped when its window has passed.
    a.feedback(fb('CLICK', T0 + 40, { adId: 'ad-none' }));
    tick(a, T0 + 40 + W + 1);
    a.drain();
    expect(a.counts.unattributedClicks).toBe(1);
  });

  it('without an outputId, an impression takes the latest served capture of the ad and a click the latest impression', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.25));
    a.serve(served('out-2', T0 + 50, 0.75));
    a.serve(served('out-3', T0 + 500, 0.5)); // served after the impression: not the one shown
    a.feedback(fb('IMPRESSION', T0 + 100, { outputId: null }));
    a.feedback(fb('CLICK', T0 + 200, { outputId: null }));
    const [e] = a.drain();
    expect(Array.from(e!.interest)).toEqual([0.75, 0]);
    expect(e!.label).toBe(1);
  });

  it('an impression of nothing served is unmatched; memory is bounded with the oldest evicted', () => {
    const a = new Attributor({ ...LIMITS, maxPending: 2, maxCaptures: 3 });
    a.feedback(fb('IMPRESSION', T0, { outputId: 'never' }));
    expect(a.counts.unmatched).toBe(1);
    for (let i = 0; i < 4; i++) a.serve(served(`o${i}`, T0, i));
    expect(a.sizes().captures).toBe(3);
    for (let i = 1; i < 4; i++) a.feedback(fb('IMPRESSION', T0 + i, { outputId: `o${i}` }));
    expect(a.sizes().pending).toBe(2);
    expect(a.counts.evicted).toBe(2);
  });

  it('survives a restart: its changelog records restore captures, pending impressions and waiting clicks', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.25));
    a.serve(served('out-2', T0, 0.5, { adId: 'ad-2' }));
    a.serve(served('out-3', T0, 0.125, { adId: 'ad-3' }));
    a.feedback(fb('IMPRESSION', T0 + 1, { feedbackId: 'imp-a' }));
    a.feedback(fb('IMPRESSION', T0 + 1, { feedbackId: 'imp-b', outputId: 'out-2', adId: 'ad-2' }));
    a.feedback(fb('CLICK', T0 + 2, { outputId: 'out-3', adId: 'ad-3' }));
    const b = restarted(a);
    b.feedback(fb('CLICK', T0 + 10)); // clicks imp-a
    b.feedback(fb('IMPRESSION', T0 + 1, { feedbackId: 'imp-c', outputId: 'out-3', adId: 'ad-3' })); // meets the waiting click
    b.feedback({ ...fb('IMPRESSION', T0 + 1), feedbackId: 'imp-a' }); // re-delivered after the restart
    tick(b, T0 + 1 + W + 1);
    const got = b.drain().map((e) => [e.exampleId, e.label, e.interest[0]]);
    expect(got).toEqual([['imp-a', 1, 0.25], ['imp-c', 1, 0.125], ['imp-b', 0, 0.5]]);
    // Counts are since the start (metrics): the restored attributor's own.
    expect(b.counts).toMatchObject({ impressions: 1, clicks: 1, positives: 2, negatives: 1, duplicates: 1 });
  });
});

describe('per-user bounds', () => {
  it('one user\'s labelling state stays within a changelog record, the oldest evicted', () => {
    const a = new Attributor({ ...LIMITS, maxCaptures: 5000, maxPending: 5000 });
    const n = MAX_LABELS_PER_USER + 5;
    for (let i = 0; i < n; i++) a.serve(served(`out-${i}`, T0, 0.5));
    for (let i = 0; i < n; i++) a.feedback(fb('IMPRESSION', T0 + 1, { feedbackId: `imp-${i}`, outputId: `out-${i}` }));
    expect(a.sizes().pending).toBe(MAX_LABELS_PER_USER);
    expect(a.counts.evicted).toBe(5);
    const user = attributionRecords(0, a.takeChanges()).find((r) => r.key.endsWith('/u/u1'))!;
    expect(user.value!.length).toBeLessThan(400_000);
    // The oldest went: a click on it finds nothing (it waits), one on the newest labels it.
    a.feedback(fb('CLICK', T0 + 2, { outputId: 'out-0' }));
    a.feedback(fb('CLICK', T0 + 2, { outputId: `out-${n - 1}` }));
    expect(a.drain().map((e) => e.exampleId)).toEqual([`imp-${n - 1}`]);
  });
});

describe('a deleted user', () => {
  it('leaves nothing held: their records are deleted, no example comes of their impressions', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.25));
    a.serve(served('out-2', T0, 0.5, { userId: 'u2' }));
    a.feedback(fb('IMPRESSION', T0 + 1, { feedbackId: 'imp-1' }));
    a.feedback(fb('IMPRESSION', T0 + 1, { feedbackId: 'imp-2', userId: 'u2', outputId: 'out-2' }));
    a.takeChanges();
    a.forgetUser('u1');
    const c = a.takeChanges();
    expect(c.users).toEqual([['u1', null]]);
    expect(c.outputs.map(([key, held]) => [key, held])).toEqual([[heldKey('u1', 'out-1'), null]]);
    expect(c.ads.map(([, ad]) => ad)).toEqual([null]);
    tick(a, T0 + 1 + W + 1);
    expect(a.drain().map((e) => e.exampleId)).toEqual(['imp-2']);
  });
});

describe('labelled examples on the training-examples topic', () => {
  it('encode as TrainingExample records that the trainer packs, features intact', () => {
    const a = new Attributor(LIMITS);
    a.serve(served('out-1', T0, 0.25));
    a.feedback(fb('IMPRESSION', T0, { feedbackId: 'imp-t', position: 3 }));
    a.feedback(fb('CLICK', T0 + 5));
    const [e] = a.drain();
    const bytes = codec.encode(RecordNames.trainingExample, trainingExampleValue(e!));
    const back = codec.decode<TrainingExampleRecord>(bytes, Accepts.trainingExample).value;
    const { set } = packExamples([back]);
    expect(set.labels[0]).toBe(1);
    expect(Array.from(set.interests)).toEqual([0.25, 0]);
    expect(set.servedAt[0]).toBe(T0);
  });
});
