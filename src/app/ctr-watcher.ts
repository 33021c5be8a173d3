/**
 * Watches MODEL_DIR/ctr/ for trained CTR model versions (`adstream train` writes them) and swaps
 * the newest into the running processor: every inference worker loads, warms and checks it on its
 * held-back sample beside the old one; then it commits between rankings (ServingVersion), and the
 * outputs' modelVersion ends with the version's name. A version that fails any step is refused
 * with a log line and a metric, remembered (not retried), and the old model keeps serving.
 * A folder rather than a control topic: the trainer and the processor share MODEL_DIR already,
 * a folder needs no new topic or ACL, and a version is complete when its card is there.
 */
import type { InferenceEngine } from '../inference/inference-engine.js';
import { listCtrVersions, readCtrVersion } from '../models/ctr-versions.js';
import type { ServingVersion } from '../pipeline/serving-version.js';
import { errorMessage } from '../domain/errors.js';
import type { Logger } from '../util/log.js';

export interface CtrWatcherOptions {
  readonly modelDir: string;
  readonly intervalMs: number;
  readonly engine: Pick<InferenceEngine, 'stageModel' | 'spec'>;
  readonly serving: ServingVersion;
  readonly logger: Logger;
  readonly onSwap?: (result: 'swapped' | 'refused', modelVersion: string) => void;
}

export interface CtrWatcher {
  /** Looks once now (also what the timer does); resolves when any swap it starts is done. */
  poll(): Promise<void>;
  stop(): Promise<void>;
}

const CTR_MODEL = 'ctr';

export function watchCtrVersions(o: CtrWatcherOptions): CtrWatcher {
  const log = o.logger.child({ component: 'ctr-watcher' });
  const refused = new Set<string>();
  let current: string | null = null;
  let polling: Promise<void> | null = null;
  let stopped = false;

  const once = async (): Promise<void> => {
    const newest = listCtrVersions(o.modelDir).filter((v) => !refused.has(v)).at(-1);
    if (!newest || newest === current || stopped) return;
    // The version names encoders, fusion and weights, then the CTR model: the last part changes.
    const modelVersion = `${o.serving.version.slice(0, o.serving.version.lastIndexOf('/') + 1)}${newest}`;
    try {
      const running = o.engine.spec(CTR_MODEL);
      if (!running) throw new Error('no CTR model is running');
      const v = readCtrVersion(o.modelDir, newest, running);
      const staged = await o.engine.stageModel(v.spec, v.check);
      await o.serving.swap(modelVersion, () => staged.commit());
      current = newest;
      log.info('CTR model swapped in', { version: newest, modelVersion });
      o.onSwap?.('swapped', modelVersion);
    } catch (err) {
      refused.add(newest);
      log.error('CTR model version refused; the current one keeps serving', { version: newest, reason: errorMessage(err), serving: o.serving.version });
      o.onSwap?.('refused', o.serving.version);
    }
  };
  const poll = (): Promise<void> => (polling ??= once().finally(() => (polling = null)));
  const timer = o.intervalMs > 0 ? setInterval(() => void poll(), o.intervalMs) : null;
  timer?.unref();
  return {
    poll,
    stop: async () => {
      stopped = true;
      if (timer) clearInterval(timer);
      await polling;
    },
  };
}
