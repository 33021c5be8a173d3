import { seededRandom } from '../util/random.js';

/**
 * Unit vectors around `clusters` random centres (Gaussian spread `spread` per dimension before
 * normalising), like ad embeddings that crowd around their categories: the hard case for an
 * approximate index, where near neighbours are many and close. Seeded, so runs compare.
 */
export function clusteredUnitVectors(count: number, dim: number, o: { clusters: number; spread: number; seed: number }): Float32Array {
  const rand = seededRandom(o.seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const centres = new Float32Array(o.clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = gauss();
  const out = new Float32Array(count * dim);
  for (let r = 0; r < count; r++) {
    const c = Math.floor(rand() * o.clusters);
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = centres[c * dim + j]! + o.spread * gauss();
      out[r * dim + j] = v;
      norm += v * v;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[r * dim + j]! *= inv;
  }
  return out;
}
