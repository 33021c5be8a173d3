/**
 * A long-lived child process (the local Kafka broker's JVM, the tests' Prometheus) that never
 * outlives this Node process: it runs under a tiny /bin/sh watchdog whose stdin is a pipe from us.
 * When that pipe closes (end(), or this process dying for any reason, SIGKILL included) the watchdog
 * sends the child SIGTERM, waits for it and removes the child's temp dir, unless asked to keep it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

/** A file in the temp dir that tells the watchdog to leave the dir in place (a stop for a restart). */
const KEEP_FILE = 'keep-for-restart';
const OUTPUT_TAIL_LINES = 40;
const KILL_WAIT_MS = 2_000;

/**
 * The watchdog. $1 = temp dir to remove when the child is gone; the rest is the child's command line.
 * - fd 3 := our stdin (a pipe from Node): background jobs get /dev/null as stdin, so keep it aside.
 * - The child is started by an inner sh that prints its own pid and then execs the command, so the
 *   pid line is on stdout before anything the child writes, and it is the child's pid.
 * - The watcher uses the `read` builtin (no child process to leak when it is killed): EOF on fd 3
 *   means Node ended the pipe or died, and the child gets SIGTERM.
 * - Nothing after the child exits writes to stdout/stderr: Node may be gone and the pipes broken.
 */
const WATCHDOG = [
  'dir=$1; shift',
  'exec 3<&0',
  `sh -c 'echo "@@pid $$"; exec "$@"' child "$@" </dev/null 3<&- &`,
  'child=$!',
  '{ while read -r _ <&3; do :; done; kill -TERM "$child" 2>/dev/null; } </dev/null &',
  'watcher=$!',
  'exec 3<&-',
  'wait "$child"; status=$?',
  'kill "$watcher" 2>/dev/null',
  `[ -e "$dir/${KEEP_FILE}" ] || rm -rf "$dir" 2>/dev/null`,
  'exit "$status"',
].join('\n');

export interface GuardedProcessOptions {
  /** The child's temp dir: the watchdog removes it once the child is gone (see end()'s keepDir). */
  readonly dir: string;
  readonly command: string;
  readonly args: readonly string[];
  /** The watchdog shell's $0, as `ps` shows it. */
  readonly name: string;
  /** Each line the child writes on stdout or stderr. */
  readonly onLine?: (line: string) => void;
}

export interface GuardedProcess {
  /** The watchdog shell. */
  readonly proc: ChildProcess;
  /** Resolves when the watchdog has exited. */
  readonly exit: Promise<void>;
  /** The last lines the child wrote (for failure messages). */
  output(): string;
  /** SIGKILLs the child and the watchdog now (synchronous: usable in an 'exit' handler). */
  killNow(): void;
  /**
   * Ends the child through the watchdog (SIGTERM; `signal` SIGKILL: a crash), SIGKILL after `graceMs`
   * (`onSlow` is told first). `keepDir`: the watchdog leaves the temp dir in place this time.
   */
  end(graceMs: number, opts?: { signal?: 'SIGTERM' | 'SIGKILL'; keepDir?: boolean; onSlow?: () => void }): Promise<void>;
}

/** Starts `command args` under the watchdog, in a process group of its own. */
export function startGuarded(o: GuardedProcessOptions): GuardedProcess {
  const proc = spawn('/bin/sh', ['-c', WATCHDOG, o.name, o.dir, o.command, ...o.args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // Own process group: a terminal's Ctrl-C reaches Node only, and Node's exit then stops the child
    // through the pipe (orderly), instead of racing a SIGINT straight to it.
    detached: true,
  });
  proc.stdin?.on('error', () => {}); // EPIPE once the shell is gone
  const tail: string[] = [];
  let childPid: number | undefined;
  const onLine = (line: string): void => {
    const m = /^@@pid (\d+)$/.exec(line);
    if (m && childPid === undefined) {
      childPid = Number(m[1]);
      return;
    }
    tail.push(line);
    if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    o.onLine?.(line);
  };
  for (const stream of [proc.stdout, proc.stderr]) {
    let buf = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  const exit = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const killNow = (): void => {
    for (const pid of [childPid, proc.pid]) {
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  const keepFile = join(o.dir, KEEP_FILE);
  return {
    proc,
    exit,
    output: () => tail.join('\n'),
    killNow,
    async end(graceMs, { signal = 'SIGTERM', keepDir = false, onSlow } = {}) {
      if (keepDir) await writeFile(keepFile, '');
      if (!exited(proc)) {
        if (signal === 'SIGKILL') killNow();
        proc.stdin?.end(); // EOF -> the watchdog sends the child SIGTERM (and its watcher ends)
        if (!(await within(exit, graceMs))) {
          onSlow?.();
          killNow();
          await within(exit, KILL_WAIT_MS);
        }
      }
      if (keepDir) await rm(keepFile, { force: true });
    },
  };
}

/**
 * The last resort when this process exits without a stop: 'exit' handlers must be synchronous, so
 * `kill()` (a GuardedProcess's killNow) and a synchronous removal of `dir`. Returns the function that
 * takes the handler off again (for an orderly stop).
 */
export function cleanUpOnExit(dir: string, kill: () => void): () => void {
  const onExit = (): void => {
    kill();
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort; the watchdog removes it too */
    }
  };
  process.once('exit', onExit);
  return () => process.removeListener('exit', onExit);
}

/** Whether a child process has exited (by a code or a signal). */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true when `p` settles within `ms`, false otherwise; never keeps the event loop alive. */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    p.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
