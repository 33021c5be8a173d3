#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { describeSettings, loadConfig } from './config/load-config.js';
import { ConfigError, EnvironmentError, errorMessage } from '../domain/errors.js';
import { SchemaIncompatibleError } from '../serde/schema-registry.js';
import { startHttpServer } from '../adapters/http/server.js';
import { createLogger, type LogLevel } from '../util/log.js';
import { startKafkaProcessor } from './processor.js';
import { trainItemsCommand } from './train-items-command.js';
import { modelsCommand } from './models-command.js';
import { searchAds } from '../pipeline/ad-search.js';
import { MODEL_PACKS } from '../models/packs/model-packs.js';

const HELP = `adstream: real-time multimodal ad-targeting stream processor

Usage:
  adstream run [--config FILE]        consume the event topics and emit scored ad candidates
  adstream demo [--seconds N] [--warmup W] [--rate R] [--users U] [--models default|packs] [--registry]
                                      start a local broker (unless KAFKA_BROKERS is set), load a
                                      synthetic catalog, run the processor (a process of its own),
                                      drive synthetic traffic through it (W s of warm-up, default 10,
                                      reported apart; then N s, default 30), print a summary and a
                                      JSON line; --models packs
                                      runs the fetched model packs (MODEL_PACKS=efficientnet-lite0,
                                      use-multilingual) instead of the default encoders; --registry: with
                                      a schema registry (a local one unless SCHEMA_REGISTRY_URL is set)
  adstream models fetch PACK...       download (once, pinned by sha256) and convert pretrained model
                                      packs (${Object.keys(MODEL_PACKS).join(', ')}) into MODEL_PACK_DIR;
                                      MODEL_PACKS then uses them offline. \`models list\` lists them
  adstream broker                     start a local single-node Kafka broker and wait (Ctrl-C stops)
  adstream registry                   start a local schema registry (Apicurio) and wait (Ctrl-C stops)
  adstream train items --clicks FILE --out DIR
                                      learn item embeddings from a click log into a click encoder
                                      and its MODEL_CARD (adstream train items --help)
  adstream train [ctr] --examples FILE | --from-topic
                                      train the CTR model on logged examples, write a new version
                                      under MODEL_DIR/ctr/ (adstream train --help for its options)
  adstream --help                     this text

Settings (environment variables; a JSON config file given by --config or CONFIG_FILE uses the
camelCase keys listed in the README; the environment wins over the file):
${describeSettings()}
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'train' && argv[1] === 'items') return trainItemsCommand(argv.slice(2));
  // train has options of its own: parsed by its module.
  if (argv[0] === 'train') {
    const stop = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
    return (await import('./train.js')).trainCommand(argv.slice(1), (line) => process.stdout.write(line + '\n'), stop.signal);
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      rate: { type: 'string' },
      users: { type: 'string' },
      models: { type: 'string' },
      registry: { type: 'boolean' },
    },
  });
  const command = positionals[0] ?? 'run';
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  switch (command) {
    case 'run':
      return run(values.config);
    case 'demo':
      return demo(values);
    case 'broker':
      return broker();
    case 'models':
      return modelsCommand(positionals.slice(1), loadConfig({ file: values.config }).modelPackDir);
    case 'registry':
      return registry();
    default:
      process.stderr.write(`unknown command "${command}"; see --help\n`);
      return 2;
  }
}

async function run(configFile: string | undefined): Promise<number> {
  const config = loadConfig({ file: configFile });
  const logger = createLogger(config.logLevel as LogLevel);
  const processor = await startKafkaProcessor(config, logger);
  const http = await startHttpServer({
    host: config.httpHost, port: config.httpPort, registry: processor.metrics.registry, isReady: processor.isReady, readyDetail: processor.readyDetail, views: processor.views, token: config.httpToken,
    search: (query, k) => searchAds(processor.core, query, k), searchMaxBytes: config.imageMaxBytes,
  });
  logger.info('http listening', { host: config.httpHost, port: http.port });
  return new Promise<number>((resolve) => {
    let exiting = false;
    const shutdown = (signal: string, code: number): void => {
      if (exiting) return;
      exiting = true;
      logger.info('shutting down: draining in-flight work, committing, disconnecting', { signal });
      processor
        .stop()
        .then(() => http.close())
        .then(
          () => resolve(code),
          (err: unknown) => {
            logger.error('shutdown failed', { err });
            resolve(1);
          },
        );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM', 0));
    process.once('SIGINT', () => shutdown('SIGINT', 0));
    processor.failed.catch((err: unknown) => {
      logger.error('processor failed', { err });
      shutdown('failure', 1);
    });
  });
}

async function demo(values: { seconds?: string | undefined; warmup?: string | undefined; rate?: string | undefined; users?: string | undefined; models?: string | undefined; registry?: boolean | undefined }): Promise<number> {
  const { runDemo } = await import('./demo.js');
  const num = (name: string, v: string | undefined, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`--${name}`, `must be a number between ${min} and ${max}, got "${v}"`);
    return n;
  };
  const logLevel = (process.env.LOG_LEVEL ?? 'warn') as LogLevel;
  if (values.models !== undefined && values.models !== 'default' && values.models !== 'packs') throw new ConfigError('--models', `must be default or packs, got "${values.models}"`);
  const result = await runDemo({
    models: values.models === 'packs' ? 'packs' : 'default',
    seconds: num('seconds', values.seconds, 30, 1, 86400),
    warmupSeconds: num('warmup', values.warmup, 10, 0, 3600),
    rate: num('rate', values.rate, 1000, 1, 1_000_000),
    users: num('users', values.users, 500, 1, 10_000_000),
    corruptShare: 0.005,
    registry: values.registry === true,
    logger: createLogger(logLevel),
    say: (line) => process.stdout.write(line + '\n'),
  });
  process.stdout.write(JSON.stringify(result) + '\n');
  return result.scored_out > 0 && result.unaccounted === 0 ? 0 : 1;
}

async function broker(): Promise<number> {
  const { startLocalBroker } = await import('../devtools/local-broker.js');
  const t0 = Date.now();
  const b = await startLocalBroker({ log: (m) => process.stderr.write(m + '\n') });
  process.stdout.write(`Kafka broker ready at ${b.bootstrap} in ${Date.now() - t0} ms; export KAFKA_BROKERS=${b.bootstrap}\nCtrl-C to stop.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await b.stop();
  return 0;
}

async function registry(): Promise<number> {
  const { startLocalRegistry } = await import('../devtools/local-registry.js');
  const r = await startLocalRegistry({ log: (m) => process.stderr.write(m + '\n') });
  process.stdout.write(`schema registry ready in ${r.startMs} ms (global compatibility BACKWARD); export SCHEMA_REGISTRY_URL=${r.url}\nCtrl-C to stop.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await r.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const known = err instanceof ConfigError || err instanceof EnvironmentError || err instanceof SchemaIncompatibleError;
    process.stderr.write(`adstream: ${known ? errorMessage(err) : (err as Error)?.stack ?? String(err)}\n`);
    process.exit(known ? 2 : 1);
  },
);
