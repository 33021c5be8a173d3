/**
 * The learning loop, simulated end to end on a real broker: the processor (in this process) serves
 * a synthetic world's users with the hand-set CTR model while the simulated ad server
 * (loadtest/ad-server.ts) shows the top N of each output and clicks with the world's hidden
 * probability (loadtest/click-model.ts); the examples the processor logs on `training-examples`
 * are read back from the topic and trained on (src/training/ctr); the new version is published in
 * MODEL_DIR/ctr/, the processor swaps it in live, and the same traffic process is served again.
 *
 * Rounds: every user makes one event (the world's traffic), the outputs come back, the ad server
 * shows them `shownDelayMs` of event time later and clicks within the attribution window; the
 * next round starts `roundSeconds` of event time on, past every window of the round before, so
 * its feedback closes them (the watermark is the feedback's event time). Warm-up rounds are served
 * to no one: users get a history first, so phase 1 and phase 2 meet the same kind of user.
 * Event time is simulated (it starts hours before now and moves faster than the wall clock; it
 * stays within the processor's age and skew limits).
 *
 * Prints the offline table (hand-set vs trained vs the oracle that knows the true probability, on
 * the trainer's validation split: the latest examples of phase 1 by event time) and the online
 * one (realised CTR of the served top N per phase, and as a share of the oracle's), then one JSON
 * line. Starts a local broker unless KAFKA_BROKERS is set.
 *
 * `--control`: the same run without the swap (phase 2 served by the hand-set model again), to
 * see what changes between the phases without a new model.
 *
 *   npm run eval:learning -- --world loadtest/worlds/default.json [--warmup 6] [--rounds 24] [--rounds-after 8] [--slots 10] [--top-k 20] [--control] [--examples-out FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { GroupConsumer, KafkaClient, OutboundRecord } from '../src/adapters/kafka/port.js';
import { readExampleTopic } from '../src/app/example-topic.js';
import { startKafkaProcessor, type RunningProcessor } from '../src/app/processor.js';
import type { Config } from '../src/app/config/settings.js';
import { encodeAd } from '../src/devtools/traffic.js';
import type { ScoredOutput } from '../src/domain/outputs.js';
import { CTR_REVISION } from '../src/models/graphs/ctr.js';
import { AvroCodec } from '../src/serde/avro-codec.js';
import { Accepts } from '../src/serde/record-names.js';
import { ctrMetrics, type CtrMetrics } from '../src/training/ctr/ctr-metrics.js';
import type { TrainingExampleRecord } from '../src/training/ctr/examples.js';
import { runCtrTraining, type CtrTrainingRunResult } from '../src/training/ctr/training-run.js';
import { DEFAULT_TRAINING } from '../src/training/ctr/trainer.js';
import { createLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';
import { ServingTally, SimulatedAdServer } from './ad-server.js';
import { benchBrokers, createTopicsFor, isolatedEnv, kafkaClient } from './spawn.js';
import { World, type WorldUser } from './world.js';

/** A decoded TrainingExample record (schemas/training-example.avsc), with what the oracle needs. */
export interface LoggedExample extends TrainingExampleRecord {
  readonly position: number;
  readonly modelVersion: string;
}

export interface LoopOptions {
  readonly warmupRounds: number;
  readonly rounds: number;
  readonly roundsAfter: number;
  readonly slots: number;
  readonly topK: number;
  readonly attributionWindowS: number;
  readonly roundSeconds: number;
  /** The control run: the trained version is written where the processor does not look, so phase 2 is served by the hand-set model again (what changes without the swap). */
  readonly control: boolean;
  /** Where to write phase 1's examples as read from the topic (JSON lines, what `adstream train --examples` reads). */
  readonly examplesOut?: string;
  readonly say: (line: string) => void;
}

export const DEFAULT_LOOP: Omit<LoopOptions, 'say'> = { warmupRounds: 6, rounds: 24, roundsAfter: 8, slots: 10, topK: 20, attributionWindowS: 60, roundSeconds: 120, control: false };

/** Event-time layout of a round, ms after its start: events, then the page, then clicks; all within the window. */
const EVENTS_SPREAD_MS = 20_000;
const SHOWN_DELAY_MS = 1_000;
const CLICK_DELAY_MS = { min: 500, max: 20_000 } as const;
/** How long to wait for a round's outputs or a phase's examples before giving up on the missing ones. */
const STALL_MS = 60_000;

/** Reads the scored outputs and the training examples as they come (a throwaway group that commits nothing). */
class LoopReader {
  private consumer: GroupConsumer | undefined;
  readonly outputs: ScoredOutput[] = [];
  /** Outputs read again (a re-delivery by the processor, or this reader's group re-reading after a rebalance: it commits nothing). */
  duplicateOutputs = 0;
  private readonly outputIds = new Set<string>();
  readonly examples = new Map<string, LoggedExample>();
  private readonly seenEvents = new Set<string>();
  private wake: (() => void) | undefined;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly codec: AvroCodec,
    private readonly config: Config,
  ) {}

  async start(): Promise<void> {
    const { topicScored, topicTrainingExamples } = this.config;
    this.consumer = await this.kafka.groupConsumer({ groupId: `eval-learning-${Date.now()}`, topics: [topicScored, topicTrainingExamples], commits: 'none' });
    await this.consumer.run(async (fetched) => {
      for (const r of fetched.records) {
        if (fetched.topic === topicScored) {
          const o = this.codec.decode<ScoredOutput>(r.value, Accepts.scored).value;
          if (this.outputIds.has(o.outputId)) {
            this.duplicateOutputs++;
            continue;
          }
          this.outputIds.add(o.outputId);
          this.outputs.push(o);
          for (const id of o.eventIds) this.seenEvents.add(id);
        } else {
          const e = this.codec.decode<LoggedExample>(r.value, Accepts.trainingExample).value;
          if (!this.examples.has(e.exampleId)) this.examples.set(e.exampleId, e);
        }
      }
      this.wake?.();
    });
  }

  /** Waits until `done()` holds or nothing new arrived for STALL_MS; returns whether it holds. */
  async until(done: () => boolean): Promise<boolean> {
    let last = this.outputs.length + this.examples.size;
    let since = Date.now();
    while (!done()) {
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 500);
      });
      const now = this.outputs.length + this.examples.size;
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since > STALL_MS) return false;
    }
    return true;
  }

  seen(eventId: string): boolean {
    return this.seenEvents.has(eventId);
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

export interface PhaseResult {
  readonly tally: ServingTally;
  /** Outputs served whose modelVersion was not the phase's model. */
  readonly wrongVersion: number;
  /** Events of the phase that reached no output in time. */
  readonly eventsMissing: number;
}

export interface LoopResult {
  readonly before: PhaseResult;
  readonly after: PhaseResult;
  readonly training: CtrTrainingRunResult;
  readonly offline: { readonly handSet: CtrMetrics; readonly trained: CtrMetrics; readonly oracle: CtrMetrics; readonly oracleNoPosition: CtrMetrics };
  readonly duplicateOutputs: number;
  readonly examplesBefore: number;
  readonly examplesMissing: number;
  readonly swapSeconds: number;
}

/** Drives the loop on a processor whose config `config` is (topics created, catalog produced). */
export async function runLearningLoop(world: World, kafka: KafkaClient, config: Config, processor: RunningProcessor, o: LoopOptions): Promise<LoopResult> {
  const codec = new AvroCodec();
  const reader = new LoopReader(kafka, codec, config);
  await reader.start();
  const producer = await kafka.producer();
  try {
    const traffic = world.traffic(codec, { eventIdPrefix: `learn-${Date.now()}` });
    const server = new SimulatedAdServer(world.clickModel, world.ads.map((a) => a.adId), codec, {
      slots: o.slots, clickDelayMs: CLICK_DELAY_MS, seed: world.spec.seed + 5, feedbackIdPrefix: `fb-${Date.now()}`,
    });
    const topicOf = { click: config.topicClicks, image: config.topicImageViews, review: config.topicReviews } as const;
    const order = seededRandom(world.spec.seed + 6);
    const roundMs = o.roundSeconds * 1000;
    const totalRounds = o.warmupRounds + o.rounds + o.roundsAfter + 2;
    // Far enough back that every round stays within MAX_EVENT_AGE_S, and ends before now.
    let clock = Date.now() - totalRounds * roundMs - 60_000;
    let consumed = 0;

    const send = async (topic: string, records: OutboundRecord[]): Promise<void> => {
      for (let i = 0; i < records.length; i += 2000) await producer.send([{ topic, records: records.slice(i, i + 2000) }]);
    };

    /** One round: every user one event, then (unless warming up) the pages and their feedback. */
    const round = async (tally: ServingTally | undefined, servingVersion: string): Promise<{ wrongVersion: number; missing: number }> => {
      const users: WorldUser[] = [...world.users];
      for (let i = users.length - 1; i > 0; i--) {
        const j = Math.floor(order() * (i + 1));
        [users[i], users[j]] = [users[j]!, users[i]!];
      }
      const byTopic = new Map<string, OutboundRecord[]>();
      const ids: string[] = [];
      users.forEach((u, i) => {
        const e = traffic.next(clock + Math.floor((i * EVENTS_SPREAD_MS) / users.length), u);
        ids.push(e.eventId);
        const list = byTopic.get(topicOf[e.role]) ?? [];
        list.push({ key: e.key, value: e.value });
        byTopic.set(topicOf[e.role], list);
      });
      for (const [topic, records] of byTopic) await send(topic, records);
      await reader.until(() => ids.every((id) => reader.seen(id)));
      const missing = ids.filter((id) => !reader.seen(id)).length;
      const outputs = reader.outputs.slice(consumed);
      consumed = reader.outputs.length;
      let wrongVersion = 0;
      if (tally) {
        const feedback: OutboundRecord[] = [];
        for (const out of outputs) {
          if (!out.modelVersion.endsWith(`/${servingVersion}`)) {
            wrongVersion++;
            continue;
          }
          feedback.push(...server.serve(out, out.triggerEventTime + SHOWN_DELAY_MS, tally));
        }
        await send(config.topicAdFeedback, feedback);
      }
      clock += roundMs;
      return { wrongVersion, missing };
    };

    const phase = async (rounds: number, version: string, name: string): Promise<PhaseResult> => {
      const tally = new ServingTally();
      let wrongVersion = 0;
      let eventsMissing = 0;
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        const res = await round(tally, version);
        wrongVersion += res.wrongVersion;
        eventsMissing += res.missing;
        o.say(`${name} round ${r + 1}/${rounds}: ${tally.impressions} impressions, ${tally.clicks} clicks (CTR ${(100 * tally.ctr).toFixed(2)} %), ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
      // Closes the last round's windows on every partition: a report past them from every user
      // (of no served ad: counted as unmatched, not an example).
      await send(config.topicAdFeedback, world.users.map((u, i) => ({ key: Buffer.from(u.userId), value: codec.encode('dev.adstream.feedback.AdFeedback', { feedbackId: `closer-${name}-${Date.now()}-${i}`, userId: u.userId, adId: 'closer', outputId: null, position: 0, kind: 'IMPRESSION', eventTime: clock + o.attributionWindowS * 1000 }) })));
      clock += roundMs;
      return { tally, wrongVersion, eventsMissing };
    };

    for (let r = 0; r < o.warmupRounds; r++) {
      await round(undefined, CTR_REVISION);
      o.say(`warm-up round ${r + 1}/${o.warmupRounds}`);
    }
    const before = await phase(o.rounds, CTR_REVISION, 'hand-set');
    const expected = before.tally.impressions;
    const complete = await reader.until(() => reader.examples.size >= expected);
    // Training sees only what was logged before the swap, read as `adstream train --from-topic` reads it.
    const onTopic = (await readExampleTopic(kafka, codec, config.topicTrainingExamples)) as LoggedExample[];
    const logged = [...new Map(onTopic.map((e) => [e.exampleId, e])).values()];
    if (o.examplesOut) writeFileSync(o.examplesOut, logged.map((e) => JSON.stringify(e)).join('\n') + '\n');
    o.say(`phase 1: ${logged.length} training examples read back from ${config.topicTrainingExamples} (${expected} impressions${complete ? '' : '; some never came'})`);

    const unwatched = o.control ? mkdtempSync(join(tmpdir(), 'adstream-eval-learning-control-')) : undefined;
    const training = await runCtrTraining({ ...DEFAULT_TRAINING, files: [], records: logged, validationShare: 0.2, modelDir: unwatched ?? config.modelDir, say: o.say });
    if (unwatched) rmSync(unwatched, { recursive: true, force: true });
    const validation = logged.filter((e) => e.servedAt >= training.validation.from);
    const labels = Uint8Array.from(validation, (e) => e.label);
    const oracle = ctrMetrics(Float64Array.from(validation, (e) => world.clickModel.probability(e.userId, e.adId, e.position)), labels);
    // What a model blind to the slot (as the CTR model is: its inputs are the two vectors) could know at best.
    const oracleNoPosition = ctrMetrics(Float64Array.from(validation, (e) => world.clickModel.probability(e.userId, e.adId, 0)), labels);

    const t0 = performance.now();
    if (o.control) {
      const after = await phase(o.roundsAfter, CTR_REVISION, 'hand-set again (control)');
      return { before, after, training, offline: { handSet: training.handSet, trained: training.trained, oracle, oracleNoPosition }, duplicateOutputs: reader.duplicateOutputs, examplesBefore: logged.length, examplesMissing: Math.max(0, expected - logged.length), swapSeconds: 0 };
    }
    const swapped = async (): Promise<boolean> => ((await processor.metrics.ctrSwaps.get()).values.find((v) => v.labels.result === 'swapped')?.value ?? 0) >= 1;
    while (!(await swapped())) {
      if (performance.now() - t0 > STALL_MS) throw new Error(`the processor did not swap in ${training.version} within ${STALL_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const swapSeconds = (performance.now() - t0) / 1000;
    o.say(`swapped in ${training.version} after ${swapSeconds.toFixed(1)} s`);
    const after = await phase(o.roundsAfter, training.version, 'trained');
    return { before, after, training, offline: { handSet: training.handSet, trained: training.trained, oracle, oracleNoPosition }, duplicateOutputs: reader.duplicateOutputs, examplesBefore: logged.length, examplesMissing: Math.max(0, expected - logged.length), swapSeconds };
  } finally {
    await producer.disconnect();
    await reader.stop();
  }
}

/** Mean |predicted - observed| over the calibration bins, weighted by their counts. */
export function calibrationError(m: CtrMetrics): number {
  let s = 0;
  let n = 0;
  for (const b of m.calibration) {
    s += b.count * Math.abs(b.meanPredicted - b.observed);
    n += b.count;
  }
  return s / n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      world: { type: 'string', default: 'loadtest/worlds/default.json' },
      warmup: { type: 'string', default: String(DEFAULT_LOOP.warmupRounds) },
      rounds: { type: 'string', default: String(DEFAULT_LOOP.rounds) },
      'rounds-after': { type: 'string', default: String(DEFAULT_LOOP.roundsAfter) },
      slots: { type: 'string', default: String(DEFAULT_LOOP.slots) },
      'top-k': { type: 'string', default: String(DEFAULT_LOOP.topK) },
      control: { type: 'boolean', default: false },
      'examples-out': { type: 'string' },
    },
  });
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
  const say = (line: string): void => void process.stderr.write(line + '\n');
  const o: LoopOptions = {
    ...DEFAULT_LOOP, say,
    warmupRounds: int('warmup', values.warmup, 0), rounds: int('rounds', values.rounds, 2), roundsAfter: int('rounds-after', values['rounds-after'], 1),
    slots: int('slots', values.slots, 1), topK: int('top-k', values['top-k'], 1), control: values.control!,
    ...(values['examples-out'] ? { examplesOut: values['examples-out'] } : {}),
  };
  if (o.topK < o.slots) throw new Error(`--top-k (${o.topK}) must be at least --slots (${o.slots})`);
  const t0 = performance.now();
  const world = await World.fromFile(values.world!);
  const { brokers, broker } = await benchBrokers(say);
  const modelDir = mkdtempSync(join(tmpdir(), 'adstream-eval-learning-'));
  let processor: RunningProcessor | undefined;
  try {
    const kafka = kafkaClient(brokers);
    // The simulated ad server reports from its first round: every served output is captured (the default, on-feedback, would count round 1's impressions as unmatched).
    const env = isolatedEnv(brokers, 'learn', { MODEL_DIR: modelDir, CTR_WATCH_INTERVAL_S: '1', TOP_K: String(o.topK), ATTRIBUTION_WINDOW_S: String(o.attributionWindowS), ATTRIBUTION_CAPTURE: 'always' });
    const config = await createTopicsFor(kafka, env);
    const codec = new AvroCodec();
    const producer = await kafka.producer();
    await producer.send([{ topic: config.topicAds, records: world.ads.map((ad) => ({ key: Buffer.from(ad.adId), value: encodeAd(codec, ad, Date.now()) })) }]);
    await producer.disconnect();
    processor = await startKafkaProcessor(config, createLogger('warn', {}, (l) => process.stderr.write(l)));
    const r = await runLearningLoop(world, kafka, config, processor, o);
    print(world, values.world!, o, r, (performance.now() - t0) / 1000);
  } finally {
    await processor?.stop();
    rmSync(modelDir, { recursive: true, force: true });
    await broker?.stop();
  }
}

function print(world: World, worldFile: string, o: LoopOptions, r: LoopResult, seconds: number): void {
  const s = world.spec;
  const cm = s.clickModel;
  const machine = `${availableParallelism()} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  console.log(`learning loop: world ${worldFile} (seed ${s.seed}, ${world.ads.length} ads, ${s.users} users; click model base ${cm.base}, affinity ${cm.affinity}, quality sd ${cm.qualitySd}, position decay ${cm.positionDecay}); TOP_K ${o.topK}, top ${o.slots} shown; ${o.warmupRounds} warm-up + ${o.rounds} + ${o.roundsAfter} rounds of one event per user; ${machine}`);
  console.log('');
  const { handSet, trained, oracle, oracleNoPosition } = r.offline;
  console.log(`offline, on the trainer's validation split (latest 20 % of phase 1 by event time): ${trained.examples} examples, ${trained.positives} clicks; trained on ${r.training.train.examples}`);
  console.log('| metric | hand-set | trained | oracle | oracle blind to the slot |');
  console.log('| --- | --- | --- | --- | --- |');
  const f = (x: number, d = 4): string => x.toFixed(d);
  const rows: [string, (m: CtrMetrics) => string][] = [
    ['AUC', (m) => f(m.auc)],
    ['log loss', (m) => f(m.logLoss)],
    ['F1 (best threshold)', (m) => f(m.f1)],
    ['mean predicted CTR (observed ' + f(trained.positives / trained.examples) + ')', (m) => f(m.calibration.reduce((a, b) => a + b.count * b.meanPredicted, 0) / m.examples)],
    ['calibration error (mean abs, per decile)', (m) => f(calibrationError(m))],
    ['top decile: predicted / observed', (m) => `${f(m.calibration.at(-1)!.meanPredicted)} / ${f(m.calibration.at(-1)!.observed)}`],
  ];
  for (const [name, get] of rows) console.log(`| ${name} | ${get(handSet)} | ${get(trained)} | ${get(oracle)} | ${get(oracleNoPosition)} |`);
  console.log('');
  console.log(`online, realised CTR of the top ${o.slots} served (expected: the mean true probability of what was shown; oracle: the best ${o.slots} by true probability among the output's candidates / the whole catalog)`);
  console.log('| phase | pages | impressions | clicks | realised CTR | expected CTR | oracle (candidates) | share | oracle (catalog) | share |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
  for (const [name, p] of [['1: hand-set', r.before], [o.control ? '2: hand-set again (control: no swap)' : '2: trained', r.after]] as const) {
    const t = p.tally;
    console.log(`| ${name} | ${t.pages} | ${t.impressions} | ${t.clicks} | ${pct(t.ctr)} | ${pct(t.expectedCtr)} | ${pct(t.oracleCandidatesCtr)} | ${f(t.ctr / t.oracleCandidatesCtr, 3)} | ${pct(t.oracleCatalogCtr)} | ${f(t.ctr / t.oracleCatalogCtr, 3)} |`);
  }
  console.log('');
  const uplift = r.after.tally.ctr / r.before.tally.ctr;
  const checks = { aucGain: trained.auc - handSet.auc, aucShareOfOracle: trained.auc / oracle.auc, ctrUplift: uplift };
  console.log(`trained AUC - hand-set AUC = ${f(checks.aucGain)} (goal >= 0.05); trained / oracle AUC = ${f(checks.aucShareOfOracle, 3)} (goal >= 0.9); realised CTR after / before the swap = ${f(uplift, 3)} (goal >= 1.2); training ${r.training.examplesPerSecond} examples/s, swap ${r.swapSeconds.toFixed(1)} s after publishing`);
  const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;
  const offline = (m: CtrMetrics): Record<string, number> => ({ auc: round(m.auc), log_loss: round(m.logLoss), f1: round(m.f1), calibration_error: round(calibrationError(m)) });
  const online = (p: PhaseResult): Record<string, number> => ({
    pages: p.tally.pages, impressions: p.tally.impressions, clicks: p.tally.clicks, ctr: round(p.tally.ctr), expected_ctr: round(p.tally.expectedCtr),
    oracle_candidates_ctr: round(p.tally.oracleCandidatesCtr), oracle_catalog_ctr: round(p.tally.oracleCatalogCtr), wrong_version_outputs: p.wrongVersion, events_missing: p.eventsMissing,
  });
  console.log(JSON.stringify({
    world: worldFile, control: o.control, seed: s.seed, machine, seconds: Math.round(seconds), top_k: o.topK, slots: o.slots, rounds: { warmup: o.warmupRounds, before: o.rounds, after: o.roundsAfter },
    version: r.training.version, examples_before_swap: r.examplesBefore, examples_missing: r.examplesMissing, training_examples_per_s: r.training.examplesPerSecond, swap_s: round(r.swapSeconds, 1),
    offline: { hand_set: offline(handSet), trained: offline(trained), oracle: offline(oracle), oracle_blind_to_slot: offline(oracleNoPosition) }, duplicate_outputs_read: r.duplicateOutputs,
    online: { before: online(r.before), after: online(r.after) },
    done_when: { auc_gain: round(checks.aucGain), auc_share_of_oracle: round(checks.aucShareOfOracle), ctr_uplift: round(uplift, 3), met: checks.aucGain >= 0.05 && checks.aucShareOfOracle >= 0.9 && uplift >= 1.2 },
  }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
