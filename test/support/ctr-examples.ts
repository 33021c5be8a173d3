/**
 * Small generated click logs for the CTR trainer's tests: unit vectors for interests and ads, and
 * a hidden click probability that depends on cos(u, a) and on a per-ad quality the cosine cannot
 * see (a direction of the ad vector), so a trained model can beat the hand-set one.
 */
import { gaussian, seededRandom } from '../../src/util/random.js';
import type { TrainingExampleRecord } from '../../src/training/ctr/examples.js';

export interface GeneratedExamples {
  readonly records: TrainingExampleRecord[];
  /** The hidden true click probability of each record. */
  readonly truth: Float64Array;
}

export function generateExamples(n: number, dim: number, seed: number): GeneratedExamples {
  const rand = seededRandom(seed);
  const g = gaussian(rand);
  const unit = (): number[] => {
    const v = Array.from({ length: dim }, g);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const quality = unit();
  const records: TrainingExampleRecord[] = [];
  const truth = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const interest = unit();
    const ad = unit();
    let cos = 0;
    let q = 0;
    for (let k = 0; k < dim; k++) {
      cos += interest[k]! * ad[k]!;
      q += quality[k]! * ad[k]!;
    }
    const p = 1 / (1 + Math.exp(-(-1.5 + 2 * cos + 3 * q)));
    truth[i] = p;
    records.push({ exampleId: `e${i}`, userId: `u${i % 50}`, adId: `a${i % 40}`, servedAt: 1_700_000_000_000 + i * 1000, label: rand() < p ? 1 : 0, interest, ad });
  }
  return { records, truth };
}
