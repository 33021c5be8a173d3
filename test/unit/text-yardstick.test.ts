/** The clothing-reviews text yardstick's metrics (loadtest/real/text-yardstick.ts) against values computed by hand. */
import { describe, expect, it } from 'vitest';
import { accuracyAndMacroF1, auc, logisticProbe, nearestCentroid, trainTestSplit } from '../../loadtest/real/text-yardstick.js';

describe('text yardstick metrics', () => {
  it('AUC: the share of (positive, negative) pairs ordered right, ties counting half', () => {
    expect(auc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBeCloseTo(0.75, 12); // pairs: (0.35>0.1), (0.35<0.4), 0.8 beats both
    expect(auc([0.5, 0.5], [true, false])).toBe(0.5);
    expect(auc([1, 2, 3], [true, true, true])).toBe(0.5); // one class only: undefined, reported as chance
  });

  it('accuracy and macro-F1 over the classes present or predicted', () => {
    // truth 0 0 1 2, predicted 0 1 1 1: class 0 F1 = 2/3, class 1 F1 = 2*1/(2+2+0) = 1/2, class 2 F1 = 0.
    const q = accuracyAndMacroF1([0, 0, 1, 2], [0, 1, 1, 1], 4);
    expect(q.accuracy).toBe(0.5);
    expect(q.macroF1).toBeCloseTo((2 / 3 + 1 / 2 + 0) / 3, 12);
  });

  it('nearest centroid assigns a test row to the class its train rows point to', () => {
    const v = Float32Array.of(1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9, 0.8, 0.3, 0.2, 0.7);
    const labels = Int32Array.of(0, 0, 1, 1, 0, 1);
    expect([...nearestCentroid(v, 2, labels, 2, Int32Array.of(0, 1, 2, 3), Int32Array.of(4, 5))]).toEqual([0, 1]);
  });

  it('a logistic probe separates a separable label (AUC 1 on its test rows)', () => {
    const n = 40;
    const v = Float32Array.from({ length: n * 2 }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2) / n - 0.5 : 1));
    const y = Array.from({ length: n }, (_, r) => r >= n / 2);
    const { train, test } = trainTestSplit(n, 0.5, 3);
    expect(train.length + test.length).toBe(n);
    expect(new Set([...train, ...test]).size).toBe(n);
    expect(auc(logisticProbe(v, 2, y, train, test), Array.from(test, (r) => y[r]!))).toBe(1);
  });
});
