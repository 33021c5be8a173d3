/**
 * Readers run together, a writer alone: a write starts once the readers in flight are done, and
 * readers that arrive meanwhile wait for it. What retrieval needs around the workers' copy of the
 * catalog: a batch must never be scored against a new ad matrix (or index) with the old row-to-ad
 * table, yet searches should not queue behind each other.
 */
export class ReadWriteGate {
  private readers = 0;
  private drained: (() => void) | undefined;
  private writing: Promise<void> | undefined;

  /** The write running or waiting for readers, if any. */
  get write(): Promise<void> | undefined {
    return this.writing;
  }

  /**
   * Enters as a reader (leave with `leave`) once no write runs and `fresh()` holds; while it does
   * not, runs `write` first. The check and the count have no await between them, so no write can
   * start in between. A failed write rejects the readers that waited for it.
   */
  async enter(fresh: () => boolean, write: () => Promise<void>): Promise<void> {
    for (;;) {
      while (this.writing) await this.writing;
      if (fresh()) {
        this.readers++;
        return;
      }
      this.startWrite(write);
    }
  }

  leave(): void {
    if (--this.readers === 0) this.drained?.();
  }

  /** Runs `write` once the readers in flight have left; one write at a time (the caller checks `write` first). */
  startWrite(write: () => Promise<void>): Promise<void> {
    if (this.writing) throw new Error('a write is already running');
    const run = async (): Promise<void> => {
      if (this.readers > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = undefined;
      await write();
    };
    const writing = run().finally(() => (this.writing = undefined));
    this.writing = writing;
    return writing;
  }
}
