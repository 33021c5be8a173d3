import { PartitionTask, type TaskHooks } from './partition-task.js';

export interface PartitionTasksOptions<R> {
  readonly chunkMaxRecords: number;
  /** The hooks of a partition's task (see PartitionTask). */
  readonly hooksOf: (partition: number) => TaskHooks<R>;
  readonly pipelineDepth?: number;
}

/** The tasks of this member, one per partition number, made when it is assigned (or as its first fetch comes). */
export class PartitionTasks<R> {
  private readonly tasks = new Map<number, PartitionTask<R>>();
  /** Sends of revoked tasks still settling: a task of the same partition made later waits for them. */
  private readonly leaving = new Map<number, Promise<void>>();
  private closed = false;

  constructor(private readonly o: PartitionTasksOptions<R>) {}

  taskOf(partition: number): PartitionTask<R> {
    let task = this.tasks.get(partition);
    if (!task) {
      const after = this.leaving.get(partition);
      task = new PartitionTask<R>({ partition, chunkMaxRecords: this.o.chunkMaxRecords, hooks: this.o.hooksOf(partition), ...(after ? { after } : {}), ...(this.o.pipelineDepth !== undefined ? { pipelineDepth: this.o.pipelineDepth } : {}) });
      this.tasks.set(partition, task);
      if (this.closed) void task.close(); // shutting down: it takes nothing
    }
    return task;
  }

  /**
   * A new generation of the group: the tasks of revoked partitions stop and send nothing more; the
   * newly assigned ones get theirs at once (exactly_once: its producer fences the partition's
   * previous owner before the partition's restore reads the changelog).
   */
  onAssignment(partitions: readonly number[]): void {
    const now = new Set(partitions);
    for (const [p, task] of this.tasks) {
      if (now.has(p)) continue;
      this.tasks.delete(p);
      const closed = task.close(true);
      this.leaving.set(p, closed);
      void closed.finally(() => {
        if (this.leaving.get(p) === closed) this.leaving.delete(p);
      });
    }
    for (const p of partitions) this.taskOf(p);
  }

  /** Runs a rate-limited flush of the partition as work of its task (between chunks). */
  flush(partition: number, make: () => Promise<R | null>): Promise<void> {
    return this.taskOf(partition).flush(make);
  }

  /** Stops taking records and waits until what was processed is sent and marked done (a shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.tasks.values()].map((t) => t.close()));
    await Promise.all(this.leaving.values());
  }
}
