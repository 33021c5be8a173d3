/**
 * The gate retrieval keeps around the workers' copy of the catalog: a write waits for the readers
 * in flight, readers that come meanwhile wait for the write, and readers run together.
 */
import { describe, expect, it } from 'vitest';
import { ReadWriteGate } from '../../src/util/read-write-gate.js';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('ReadWriteGate', () => {
  it('lets readers in together, starts a due write only once they left, and holds new readers until it is done', async () => {
    const gate = new ReadWriteGate();
    const log: string[] = [];
    let version = 0;
    let wanted = 0;
    const fresh = (): boolean => version === wanted;
    const write = async (): Promise<void> => {
      log.push('write starts');
      await tick();
      version = wanted;
      log.push('write ends');
    };
    await gate.enter(fresh, write);
    await gate.enter(fresh, write);
    log.push('two readers in');
    wanted = 1; // a change is due: the next reader asks for the write
    const third = gate.enter(fresh, write).then(() => log.push(`third reader in at version ${version}`));
    await tick();
    expect(log).toEqual(['two readers in']); // the write waits for the two readers
    gate.leave();
    await tick();
    expect(log).toEqual(['two readers in']);
    gate.leave();
    await third;
    expect(log).toEqual(['two readers in', 'write starts', 'write ends', 'third reader in at version 1']);
    gate.leave();
    expect(gate.write).toBeUndefined();
  });

  it('rejects the readers that waited for a failed write, and lets the next one try again', async () => {
    const gate = new ReadWriteGate();
    let fail = true;
    let done = false;
    const write = async (): Promise<void> => {
      if (fail) throw new Error('upload failed');
      done = true;
    };
    await expect(gate.enter(() => done, write)).rejects.toThrow('upload failed');
    fail = false;
    await gate.enter(() => done, write);
    expect(done).toBe(true);
    gate.leave();
  });
});
