/**
 * `adstream train [ctr] --examples FILE ...`: the command line of the CTR trainer
 * (src/training/ctr). Its own options, parsed here, so the other commands' parser stays as it is.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../domain/errors.js';
import { expandHome } from '../util/files.js';
import { runCtrTraining } from '../training/ctr/training-run.js';
import { DEFAULT_TRAINING } from '../training/ctr/trainer.js';
import { loadConfig } from './config/load-config.js';
import type { Config } from './config/settings.js';
import { kafkaClientFactory } from '../adapters/kafka/client.js';
import { brokersOf } from '../adapters/kafka/settings.js';
import { codecFor } from '../adapters/registry/registry-codec.js';
import { silentLogger } from '../util/log.js';
import { readExampleTopic } from './example-topic.js';

export const TRAIN_HELP = `adstream train [ctr] (--from-topic | --examples FILE [--examples FILE ...]) [options]
  Trains the CTR model on training examples: read from the training-examples topic
  (--from-topic: TOPIC_TRAINING_EXAMPLES on KAFKA_BROKERS, from the beginning to its end at the
  start of each run) and/or exported from it (JSON lines or Avro container files of
  schemas/training-example.avsc), judges it next to the hand-set model on the latest examples by
  event time, and writes it as a new version under MODEL_DIR/ctr/.
  --validation-share X   share of the examples, latest by event time, kept for validation (0.2)
  --epochs N             most epochs (${DEFAULT_TRAINING.maxEpochs}); stops earlier after --patience epochs (${DEFAULT_TRAINING.patience}) without a better validation loss
  --hidden N             hidden units (${DEFAULT_TRAINING.hidden})
  --batch N              mini-batch size (${DEFAULT_TRAINING.batchSize})
  --lr X                 Adam learning rate (${DEFAULT_TRAINING.learningRate})
  --l2 X                 L2 weight decay (${DEFAULT_TRAINING.l2})
  --seed N               initialisation and shuffling seed (${DEFAULT_TRAINING.seed})
  --watch SECONDS        retrain every SECONDS on the files as they are then (each run a new
                         version, which running processors swap in); until interrupted
  --config FILE          settings file (MODEL_DIR is read from the settings)
Prints a line per epoch and the metrics table, then one JSON line (per run with --watch).
`;

/** `stop` ends a --watch loop (the CLI aborts it on SIGINT / SIGTERM). */
export async function trainCommand(argv: readonly string[], say: (line: string) => void, stop?: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      examples: { type: 'string', multiple: true },
      'from-topic': { type: 'boolean' },
      'validation-share': { type: 'string' },
      epochs: { type: 'string' },
      hidden: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      l2: { type: 'string' },
      seed: { type: 'string' },
      patience: { type: 'string' },
      watch: { type: 'string' },
    },
  });
  const what = positionals[0] ?? 'ctr';
  if (values.help) {
    say(TRAIN_HELP);
    return 0;
  }
  if (what !== 'ctr') throw new ConfigError('train', `unknown model "${what}"; adstream train ctr trains the CTR model`);
  const files = values.examples ?? [];
  const fromTopic = values['from-topic'] ?? false;
  if (files.length === 0 && !fromTopic) throw new ConfigError('--examples', 'give at least one file of training examples, or --from-topic');
  const num = (name: string, v: string | undefined, def: number, min: number, max: number, integer: boolean): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) throw new ConfigError(`--${name}`, `must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got "${v}"`);
    return n;
  };
  const config = loadConfig({ file: values.config });
  const d = DEFAULT_TRAINING;
  const watchS = values.watch === undefined ? 0 : num('watch', values.watch, 0, 1, 7 * 86400, true);
  // Every option is checked before the first run: a typo must not surface hours into --watch.
  const options = {
    files,
    validationShare: num('validation-share', values['validation-share'], 0.2, 0.01, 0.99, false),
    maxEpochs: num('epochs', values.epochs, d.maxEpochs, 1, 10_000, true),
    hidden: num('hidden', values.hidden, d.hidden, 2, 4096, true),
    batchSize: num('batch', values.batch, d.batchSize, 1, 1 << 20, true),
    learningRate: num('lr', values.lr, d.learningRate, 1e-7, 1, false),
    l2: num('l2', values.l2, d.l2, 0, 1, false),
    patience: num('patience', values.patience, d.patience, 1, 10_000, true),
    seed: num('seed', values.seed, d.seed, 0, 2 ** 32 - 1, true),
    modelDir: expandHome(config.modelDir),
    say,
  };
  for (;;) {
    const records = fromTopic ? await examplesOnTopic(config) : [];
    if (fromTopic) say(`read ${records.length} examples from ${config.topicTrainingExamples}`);
    say(JSON.stringify(await runCtrTraining({ ...options, records })));
    if (watchS === 0 || stop?.aborted) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, watchS * 1000);
      stop?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    if (stop?.aborted) break;
  }
  return 0;
}

async function examplesOnTopic(config: Config): ReturnType<typeof readExampleTopic> {
  const client = kafkaClientFactory(config.kafkaClient)({ brokers: brokersOf(config), clientId: config.kafkaClientId, logger: silentLogger });
  return readExampleTopic(client, await codecFor(config), config.topicTrainingExamples);
}
