import { RejectedRecordError } from '../../src/errors.js';

/** Runs fn and returns the RejectedRecordError it throws; fails the test on success or any other error. */
export function rejection(fn: () => unknown): RejectedRecordError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) throw new Error('expected a RejectedRecordError, but the call succeeded');
  if (!(thrown instanceof RejectedRecordError)) throw new Error(`expected a RejectedRecordError, got ${String(thrown)}`, { cause: thrown });
  return thrown;
}
