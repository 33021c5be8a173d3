/**
 * Which models score, and when that may change: rankings run through here, and a model swap
 * commits only between them. A swap waits for the rankings in flight to finish, holds new ones
 * while it commits (a message to each worker), then switches the version, so every output is
 * labelled with the model that really scored it and the pause is at most one ranking long.
 */
export class ServingVersion {
  private inFlight = 0;
  /** Set while a swap commits: new rankings wait for it. */
  private swapping: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(private current: string) {}

  get version(): string {
    return this.current;
  }

  /** Runs one ranking; returns its result with the version in force for all of it. */
  async rank<T>(f: () => Promise<T>): Promise<{ result: T; version: string }> {
    while (this.swapping) await this.swapping;
    this.inFlight++;
    const version = this.current;
    try {
      return { result: await f(), version };
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  /** Between rankings: runs `commit` (which must make the workers use the new model), then labels outputs `version`. */
  async swap(version: string, commit: () => Promise<void>): Promise<void> {
    while (this.swapping) await this.swapping;
    let release!: () => void;
    this.swapping = new Promise<void>((r) => (release = r));
    try {
      if (this.inFlight > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = null;
      await commit();
      this.current = version;
    } finally {
      this.swapping = null;
      release();
    }
  }
}
