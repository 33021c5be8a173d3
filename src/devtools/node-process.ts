/**
 * A Node program as a child process of its own with an HTTP port chosen for it: how the demo runs
 * the processor (as operators do, `adstream run`), and how the benchmarks and integration tests do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './guarded-process.js';

export interface Spawned {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly exited: Promise<number | null>;
  /** What it wrote on stdout and stderr (the last `outputChars`, if set). */
  output(): string;
  /** Polls /readyz until 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /**
   * The process's STATE_DIR. Default: a folder of its own below the env's STATE_DIR (one local
   * store per instance); give the same folder again to restart on a store that survived.
   */
  readonly stateDir?: string;
  /** Names the process in errors. Default 'processor'. */
  readonly name?: string;
  /** Keep only the last this many characters of its output. Default: all of it. */
  readonly outputChars?: number;
  /** waitReady()'s default timeout. Default 60 s. */
  readonly readyTimeoutMs?: number;
}

/** `node <args>` with `env` on top of ours and HTTP_PORT a free port. */
export async function spawnNode(args: readonly string[], env: Record<string, string>, opts: SpawnOptions = {}): Promise<Spawned> {
  const name = opts.name ?? 'processor';
  const port = await freePort();
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env, HTTP_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (opts.outputChars !== undefined) out = out.slice(-opts.outputChars);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    port,
    exited,
    output: () => out,
    async waitReady(timeoutMs = opts.readyTimeoutMs ?? 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}:\n${out}`);
        if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`${name} not ready after ${timeoutMs} ms:\n${out}`);
    },
    async stop(graceMs = 20_000) {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

