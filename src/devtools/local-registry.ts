/**
 * A real Confluent-compatible schema registry for the demo and the tests, without Docker: Apicurio
 * Registry 2.4.2.Final (its /apis/ccompat/v7 API, in-memory storage), built once with Maven from
 * deploy/local-registry into a per-user cache, then started from there in a few seconds.
 *
 * Like the local broker, the JVM never outlives us (./guarded-process.ts), and it runs from a
 * fresh temp dir removed on stop. At start its global compatibility is set to BACKWARD, the
 * Confluent default (Apicurio's own is none).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpSchemaRegistry, type CompatibilityLevel } from '../adapters/registry/registry-client.js';
import { EnvironmentError } from '../domain/errors.js';
import { cleanUpOnExit, exited, freePort, startGuarded } from './guarded-process.js';
import { checkJava, checkMaven, run, tail, toolCacheDir } from './local-broker.js';

export const APICURIO_VERSION = '2.4.2.Final';

export interface LocalRegistry {
  /** Base URL of the Confluent-compatible API, e.g. http://127.0.0.1:40123/apis/ccompat/v7. */
  readonly url: string;
  /** A client of it (register, schema by id, compatibility). */
  readonly client: HttpSchemaRegistry;
  /** Milliseconds from launching the JVM to the first answer. */
  readonly startMs: number;
  /** Stops the JVM (SIGTERM, SIGKILL after 10 s) and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

export interface LocalRegistryOptions {
  /** Progress lines and the registry's own log lines. Default: discard. */
  log?: (msg: string) => void;
  /** How long to wait for the first answer. Default 90 s (a loaded machine). */
  readyTimeoutMs?: number;
  /** Global compatibility rule set at start. Default BACKWARD. */
  compatibility?: CompatibilityLevel;
}

const BUILD_DIR = fileURLToPath(new URL('../../deploy/local-registry/', import.meta.url));
const RUNNER_JAR = 'local-schema-registry-1-runner.jar';
const MARKER = 'app.complete';
const STOP_GRACE_MS = 10_000;
/** Quick start over peak speed: C1 only, the serial collector, a small heap. */
const JVM_FLAGS = ['-Xms64m', '-Xmx512m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Djava.awt.headless=true'];

/**
 * Builds the registry into `${XDG_CACHE_HOME:-~/.cache}/adstream/apicurio-registry-<version>/app`
 * (runner jar + lib/) unless a marker says an earlier build finished. Returns that folder.
 */
export async function ensureRegistryBuild(log: (msg: string) => void = () => {}): Promise<string> {
  const root = toolCacheDir(`apicurio-registry-${APICURIO_VERSION}`);
  const app = join(root, 'app');
  if (existsSync(join(root, MARKER))) return app;

  await checkMaven('Apicurio Registry');
  const javac = await run('javac', ['-version'], 60_000);
  if (javac.error) {
    throw new EnvironmentError(
      'javac not found on PATH: the first build of the local schema registry compiles one small Java module (deploy/local-registry/config-index-stand-in). ' +
        'Install a JDK 17+ (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless`), or run a registry with Docker (`docker compose -f deploy/docker-compose.yml up -d registry`) and set SCHEMA_REGISTRY_URL=http://localhost:8081/apis/ccompat/v7.',
    );
  }
  await mkdir(root, { recursive: true });
  // Build in a private copy of deploy/local-registry (the checkout stays clean; concurrent builds
  // do not share a target/), then move the result into place.
  const work = join(root, `build-${process.pid}-${randomBytes(4).toString('hex')}`);
  log(`building Apicurio Registry ${APICURIO_VERSION} with Maven into ${app} (first run only)`);
  const started = Date.now();
  try {
    await cp(BUILD_DIR, work, { recursive: true });
    const r = await run('mvn', ['-B', '-q', '-f', join(work, 'pom.xml'), 'package'], 30 * 60_000);
    if (r.error) {
      throw new EnvironmentError(
        `Maven could not build Apicurio Registry ${APICURIO_VERSION} (exit ${r.code}); it needs access to Maven Central (or a mirror in ~/.m2/settings.xml).\n${tail(r.output, 30)}`,
      );
    }
    const target = join(work, 'app', 'target');
    const files = await readdir(target);
    if (!files.includes(RUNNER_JAR) || !files.includes('lib')) throw new EnvironmentError(`Maven finished but ${target} holds no ${RUNNER_JAR} and lib/`);
    if (existsSync(join(root, MARKER))) return app; // another process finished first
    const partial = join(work, 'app-out');
    await mkdir(partial);
    await rename(join(target, RUNNER_JAR), join(partial, RUNNER_JAR));
    await rename(join(target, 'lib'), join(partial, 'lib'));
    await rm(app, { recursive: true, force: true });
    await rename(partial, app);
    await writeFile(join(root, MARKER), `apicurio-registry ${APICURIO_VERSION}, ${new Date().toISOString()}\n`);
    log(`built in ${Date.now() - started} ms`);
    return app;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Starts a fresh registry (empty, in memory) on a free loopback port and waits until it answers. */
export async function startLocalRegistry(opts: LocalRegistryOptions = {}): Promise<LocalRegistry> {
  const log = opts.log ?? (() => {});
  const readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  await checkJava('the local schema registry');
  const app = await ensureRegistryBuild(log);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'adstream-registry-'));
  const args = [
    ...JVM_FLAGS,
    `-Djava.io.tmpdir=${dir}`,
    '-Dquarkus.http.host=127.0.0.1',
    `-Dquarkus.http.port=${port}`,
    '-Dquarkus.log.level=WARN',
    '-Dquarkus.banner.enabled=false',
    '-jar',
    join(app, RUNNER_JAR),
  ];
  const started = Date.now();
  const jvm = startGuarded({ dir, command: 'java', args, name: 'registry-watchdog', onLine: (line) => log(`[registry] ${line}`) });
  const removeExitHandler = cleanUpOnExit(dir, () => jvm.killNow());
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await jvm.end(STOP_GRACE_MS, { onSlow: () => log(`registry did not stop within ${STOP_GRACE_MS} ms; killing it`) });
      removeExitHandler();
      await rm(dir, { recursive: true, force: true });
    })());

  const url = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  const client = new HttpSchemaRegistry({ url, timeoutMs: 2_000 });
  try {
    const deadline = Date.now() + readyTimeoutMs;
    let lastError = 'no attempt made';
    for (;;) {
      if (exited(jvm.proc)) throw new Error(`schema registry exited during start (code ${jvm.proc.exitCode ?? jvm.proc.signalCode}). Last output:\n${jvm.output()}`);
      try {
        await client.subjects();
        break;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) throw new Error(`schema registry at ${url} did not answer within ${readyTimeoutMs} ms (last error: ${lastError}). Last output:\n${jvm.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const startMs = Date.now() - started;
    await client.setCompatibility(opts.compatibility ?? 'BACKWARD');
    log(`schema registry (Apicurio ${APICURIO_VERSION}) ready at ${url} in ${startMs} ms`);
    return { url, client, startMs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
