/**
 * `adstream train items --clicks FILE --out DIR [--dim N --epochs N --window N --negatives N
 * --learning-rate X --popularity-weight X --seed N]`: item embeddings from a JSON-lines click log,
 * written as the click encoder with its MODEL_CARD (src/training/items). A progress line per epoch
 * on stderr, one JSON line at the end on stdout.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_TRAIN_ITEMS, epochLine, readClickLog, resultLine, trainItems, type TrainItemsOptions } from '../training/items/train-items.js';

export const TRAIN_ITEMS_HELP = `adstream train items --clicks FILE --out DIR [options]
  learns item embeddings (item2vec: skip-gram with negative sampling over each user's clicks in
  event-time order) and writes DIR/click-items.onnx and DIR/model-card.json; start the processor
  with MODEL_CARD=DIR/model-card.json to use them. FILE: JSON lines {"userId","itemId","categoryId","eventTime"}.
  --dim N (${DEFAULT_TRAIN_ITEMS.dim})  --epochs N (${DEFAULT_TRAIN_ITEMS.epochs})  --window N (${DEFAULT_TRAIN_ITEMS.window})  --negatives N (${DEFAULT_TRAIN_ITEMS.negatives})
  --learning-rate X (${DEFAULT_TRAIN_ITEMS.learningRate})  --popularity-weight X (${DEFAULT_TRAIN_ITEMS.popularityWeight})  --seed N (${DEFAULT_TRAIN_ITEMS.seed})
`;

/** Bad arguments or a bad log line: a one-line message and exit code 2, no stack trace. */
export async function trainItemsCommand(argv: string[]): Promise<number> {
  try {
    return await trainItemsFrom(argv);
  } catch (err) {
    process.stderr.write(`adstream train items: ${(err as Error).message}\n`);
    return 2;
  }
}

async function trainItemsFrom(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      clicks: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      dim: { type: 'string' }, epochs: { type: 'string' }, window: { type: 'string' }, negatives: { type: 'string' },
      'learning-rate': { type: 'string' }, 'popularity-weight': { type: 'string' }, seed: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(TRAIN_ITEMS_HELP);
    return 0;
  }
  if (!values.clicks || !values.out) {
    process.stderr.write(`--clicks and --out are required\n\n${TRAIN_ITEMS_HELP}`);
    return 2;
  }
  const num = (v: string | undefined, fallback: number, name: string): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`);
    return n;
  };
  const d = DEFAULT_TRAIN_ITEMS;
  const o: TrainItemsOptions = {
    dim: num(values.dim, d.dim, 'dim'), epochs: num(values.epochs, d.epochs, 'epochs'), window: num(values.window, d.window, 'window'),
    negatives: num(values.negatives, d.negatives, 'negatives'), learningRate: num(values['learning-rate'], d.learningRate, 'learning-rate'),
    popularityWeight: num(values['popularity-weight'], d.popularityWeight, 'popularity-weight'), seed: num(values.seed, d.seed, 'seed'),
  };
  const clicks = await readClickLog(values.clicks);
  const result = trainItems(clicks, values.out, o, undefined, (r) => process.stderr.write(`${epochLine(r)}\n`));
  process.stdout.write(`${resultLine(result)}\n`);
  return 0;
}
