import { RejectedRecordError } from '../../src/domain/errors.js';

/** Runs fn and returns the error of class `cls` it throws; fails the test on success or any other error. */
export function thrownBy<E extends Error>(cls: new (...args: never[]) => E, fn: () => unknown): E {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) throw new Error(`expected a ${cls.name}, but the call succeeded`);
  if (!(thrown instanceof cls)) throw new Error(`expected a ${cls.name}, got ${String(thrown)}`, { cause: thrown });
  return thrown;
}

/** The RejectedRecordError fn throws (a dead-letter reason). */
export const rejection = (fn: () => unknown): RejectedRecordError => thrownBy(RejectedRecordError, fn);
