/**
 * item2vec (Barkan and Koenigstein, 2016): word2vec's skip-gram with negative sampling over users'
 * click sequences instead of sentences. Items clicked near each other by the same users get close
 * vectors; a user is then whatever their clicks add up to, which is exactly what adstream's interest
 * fold does, so no per-user factor has to be learned (as BPR-MF would) and a new user needs none.
 * Plain SGD on typed arrays, one seeded generator: the same input and seed give the same table.
 */
import { seededRandom } from '../../util/random.js';
import { dot } from '../../util/vectors.js';

export interface Item2VecOptions {
  readonly dim: number;
  /** Context: up to this many positions either side (each centre draws its own width 1..window, as word2vec). */
  readonly window: number;
  /** Negative samples per positive pair, drawn from the items' frequency^0.75. */
  readonly negatives: number;
  readonly epochs: number;
  /** Starting learning rate; decays linearly to 1e-4 of it. */
  readonly learningRate: number;
  readonly seed: number;
}

export const DEFAULT_ITEM2VEC: Item2VecOptions = { dim: 64, window: 5, negatives: 5, epochs: 10, learningRate: 0.025, seed: 13 };

export interface EpochReport {
  readonly epoch: number;
  readonly epochs: number;
  /** Mean loss per (centre, context) pair: -log s(pos) - sum log s(-neg). */
  readonly loss: number;
  /** Positive pairs trained per second in this epoch. */
  readonly examplesPerSecond: number;
  readonly examples: number;
}

export interface Item2VecResult {
  /** items x dim, row i the vector of item i (not normalised). */
  readonly vectors: Float32Array;
  readonly last: EpochReport;
}

const NEG_TABLE_PER_ITEM = 64;

/** Items 0..items-1; sequences in time order. */
export function trainItem2Vec(sequences: readonly Int32Array[], items: number, o: Item2VecOptions = DEFAULT_ITEM2VEC, onEpoch: (r: EpochReport) => void = () => {}): Item2VecResult {
  const { dim, window, negatives, epochs, learningRate, seed } = o;
  for (const [k, v] of [['dim', dim], ['window', window], ['epochs', epochs], ['items', items]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`item2vec: ${k} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(negatives) || negatives < 0) throw new Error(`item2vec: negatives must be an integer >= 0, got ${negatives}`);
  if (!(learningRate > 0)) throw new Error(`item2vec: learningRate must be > 0, got ${learningRate}`);
  const rand = seededRandom(seed);
  const input = new Float32Array(items * dim);
  for (let i = 0; i < input.length; i++) input[i] = (rand() - 0.5) / dim;
  const output = new Float32Array(items * dim);
  const grad = new Float32Array(dim);

  // Negative sampling table: item i fills a share of slots proportional to count^0.75.
  const counts = new Float64Array(items);
  let pairsPerEpoch = 0;
  for (const s of sequences) {
    for (const it of s) {
      if (it < 0 || it >= items || !Number.isInteger(it)) throw new Error(`item2vec: item ${it} is outside 0..${items - 1}`);
      counts[it]!++;
    }
    pairsPerEpoch += s.length;
  }
  const table = new Int32Array(Math.max(items * NEG_TABLE_PER_ITEM, 1024));
  let total = 0;
  for (let i = 0; i < items; i++) total += counts[i]! ** 0.75;
  if (total === 0) throw new Error('item2vec: no clicks to train on');
  let acc = 0;
  let item = 0;
  for (let t = 0; t < table.length; t++) {
    while (item < items - 1 && (acc + counts[item]! ** 0.75) / total <= t / table.length) acc += counts[item++]! ** 0.75;
    table[t] = item;
  }

  const order = Int32Array.from(sequences, (_, i) => i);
  const steps = Math.max(1, epochs * pairsPerEpoch);
  let step = 0;
  let last: EpochReport = { epoch: 0, epochs, loss: 0, examplesPerSecond: 0, examples: 0 };
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    let loss = 0;
    let examples = 0;
    for (const si of order) {
      const s = sequences[si]!;
      for (let c = 0; c < s.length; c++) {
        const lr = learningRate * Math.max(1e-4, 1 - step++ / steps);
        const width = 1 + Math.floor(rand() * window);
        const centre = s[c]! * dim;
        for (let p = Math.max(0, c - width); p <= Math.min(s.length - 1, c + width); p++) {
          if (p === c || s[p] === s[c]) continue;
          grad.fill(0);
          for (let n = 0; n <= negatives; n++) {
            const target = n === 0 ? s[p]! : table[Math.floor(rand() * table.length)]!;
            if (n > 0 && target === s[p]) continue;
            const at = target * dim;
            const f = dot(input, centre, output, at, dim);
            const sig = 1 / (1 + Math.exp(-f));
            const label = n === 0 ? 1 : 0;
            loss -= Math.log(Math.max(1e-12, label === 1 ? sig : 1 - sig));
            const g = (label - sig) * lr;
            for (let d = 0; d < dim; d++) {
              grad[d]! += g * output[at + d]!;
              output[at + d]! += g * input[centre + d]!;
            }
          }
          for (let d = 0; d < dim; d++) input[centre + d]! += grad[d]!;
          examples++;
        }
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    last = { epoch, epochs, loss: examples > 0 ? loss / examples : 0, examplesPerSecond: seconds > 0 ? examples / seconds : 0, examples };
    onEpoch(last);
  }
  return { vectors: input, last };
}
