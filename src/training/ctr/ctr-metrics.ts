/**
 * How good a click-probability predictor is on labelled examples: ranking (AUC), probabilities
 * (log loss, calibration per decile) and decisions at the threshold that maximises F1 (accuracy,
 * precision, recall, F1), the figures the training report puts side by side for two models.
 */

export interface ThresholdMetrics {
  /** Predict "click" when p >= threshold. */
  readonly threshold: number;
  readonly accuracy: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
}

export interface CalibrationBin {
  readonly count: number;
  readonly meanPredicted: number;
  readonly observed: number;
}

export interface CtrMetrics extends ThresholdMetrics {
  readonly examples: number;
  readonly positives: number;
  readonly auc: number;
  readonly logLoss: number;
  /** Equal-count bins by predicted probability, lowest first. */
  readonly calibration: readonly CalibrationBin[];
}

/** Probabilities are clipped to [EPS, 1 - EPS] for the log loss, so one confident miss is large, not infinite. */
const EPS = 1e-7;

export function ctrMetrics(p: ArrayLike<number>, labels: ArrayLike<number>, bins = 10): CtrMetrics {
  if (p.length !== labels.length || p.length === 0) throw new Error(`need as many predictions as labels (got ${p.length} and ${labels.length}), at least one`);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i]!;
  return { examples: p.length, positives, auc: auc(p, labels), logLoss: logLoss(p, labels), ...bestF1(p, labels), calibration: calibration(p, labels, bins) };
}

/** Indices by ascending prediction. */
function ascending(p: ArrayLike<number>): Uint32Array {
  const order = new Uint32Array(p.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  return order.sort((a, b) => p[a]! - p[b]!);
}

/**
 * Area under the ROC curve: the probability that a random positive is scored above a random
 * negative (ties count half), from the rank sum (Mann-Whitney U) with tied scores given their mean
 * rank. NaN when one class is absent.
 */
export function auc(p: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = ascending(p);
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && p[order[j + 1]!] === p[order[i]!]) j++;
    const meanRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!] === 1) {
        rankSumPos += meanRank;
        pos++;
      }
    }
    i = j + 1;
  }
  const neg = order.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function logLoss(p: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const q = Math.min(1 - EPS, Math.max(EPS, p[i]!));
    s -= labels[i] === 1 ? Math.log(q) : Math.log(1 - q);
  }
  return s / p.length;
}

/** The threshold among the predictions that maximises F1 (on ties, the higher one), and the figures there. */
export function bestF1(p: ArrayLike<number>, labels: ArrayLike<number>): ThresholdMetrics {
  const order = ascending(p);
  const n = order.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i]!;
  // Walk thresholds from the highest prediction down: everything at or above is predicted positive.
  let tp = 0;
  let fp = 0;
  let best: ThresholdMetrics = { threshold: Infinity, accuracy: (n - positives) / n, precision: 0, recall: 0, f1: 0 };
  for (let i = n - 1; i >= 0; ) {
    const t = p[order[i]!]!;
    while (i >= 0 && p[order[i]!] === t) {
      if (labels[order[i]!] === 1) tp++;
      else fp++;
      i--;
    }
    const precision = tp / (tp + fp);
    const recall = positives > 0 ? tp / positives : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    if (f1 > best.f1) best = { threshold: t, accuracy: (tp + (n - positives - fp)) / n, precision, recall, f1 };
  }
  return best;
}

/** Mean prediction and observed click rate in `bins` equal-count bins by prediction (the last bins take the remainder). */
export function calibration(p: ArrayLike<number>, labels: ArrayLike<number>, bins: number): CalibrationBin[] {
  const order = ascending(p);
  const n = order.length;
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const from = Math.floor((b * n) / bins);
    const to = Math.floor(((b + 1) * n) / bins);
    if (to === from) continue;
    let sp = 0;
    let sy = 0;
    for (let i = from; i < to; i++) {
      sp += p[order[i]!]!;
      sy += labels[order[i]!]!;
    }
    out.push({ count: to - from, meanPredicted: sp / (to - from), observed: sy / (to - from) });
  }
  return out;
}
