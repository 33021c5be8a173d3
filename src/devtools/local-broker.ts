/**
 * A real single-node Apache Kafka broker (KRaft, combined broker+controller) for the demo and the
 * tests, without Docker: the broker's jars come from Maven Central (deploy/local-kafka/pom.xml) into
 * a per-user cache, and the JVM runs from a fresh temp dir that is removed on stop.
 *
 * The JVM never outlives us: it runs under a tiny /bin/sh watchdog (./guarded-process.ts) whose stdin
 * is a pipe from this process. When that pipe closes (stop(), or this process dying for any reason, SIGKILL included)
 * the watchdog sends the JVM SIGTERM, waits for it and removes the temp dir.
 */
import { execFile, type ChildProcess, type ExecFileException } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKafkaClient } from '../adapters/kafka/client.js';
import type { KafkaAdmin } from '../adapters/kafka/port.js';
import { EnvironmentError } from '../domain/errors.js';
import { silentLogger } from '../util/log.js';
import { cleanUpOnExit, exited, freePort, startGuarded, type GuardedProcess } from './guarded-process.js';

export const KAFKA_VERSION = '4.1.1';

export interface LocalBroker {
  /** host:port of the PLAINTEXT listener, e.g. 127.0.0.1:40123. */
  readonly bootstrap: string;
  /** The temp dir holding server.properties and the data (removed by stop()). */
  readonly dataDir: string;
  /** Stops the JVM (SIGTERM, SIGKILL after 15 s) and removes dataDir. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Stops the JVM but keeps dataDir and the ports (a broker outage, for fault tests): the watchdog
   * leaves the folder in place. `startProcess()` brings it back. `signal` SIGKILL: a crash.
   */
  stopProcess(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts the JVM again on the same ports and data (no format) and waits until it answers. */
  startProcess(): Promise<void>;
  /** Whether the JVM is running (false between stopProcess() and startProcess()). */
  readonly running: boolean;
}

export interface LocalBrokerOptions {
  kafkaVersion?: string;
  /** Progress lines and the broker's own (quiet) log lines. Default: discard. */
  log?: (msg: string) => void;
  /** How long to wait for the broker to answer a metadata request. Default 60 s. */
  readyTimeoutMs?: number;
}

const POM_PATH = fileURLToPath(new URL('../../deploy/local-kafka/pom.xml', import.meta.url));
const LOG4J2_PATH = fileURLToPath(new URL('../../deploy/local-kafka/log4j2.yaml', import.meta.url));
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies';
const JVM_FLAGS = ['-Xms256m', '-Xmx512m', '-XX:+UseG1GC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true'];
const MARKER = 'libs.complete';
const STOP_GRACE_MS = 15_000;

const INSTALL_HINT =
  'Install a Java 17+ runtime and Maven (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless maven`), ' +
  'or run Kafka with Docker instead: `docker compose -f deploy/docker-compose.yml up -d` and set KAFKA_BROKERS=localhost:9092.';

export interface RunResult {
  /** Exit status, or an errno string such as ENOENT when the program could not be started. */
  code: number | string | null;
  output: string;
  error?: ExecFileException;
}

export function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (!err) return resolve({ code: 0, output });
      resolve({ code: err.code ?? null, output, error: err });
    });
  });
}

function isMissing(r: RunResult): boolean {
  return r.code === 'ENOENT';
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Throws EnvironmentError unless `java` is on PATH and is version 17 or later; `what` needs it. */
export async function checkJava(what = 'the local Kafka broker'): Promise<void> {
  const r = await run('java', ['-version'], 30_000);
  if (isMissing(r)) throw new EnvironmentError(`java not found on PATH; ${what} needs Java 17+. ${INSTALL_HINT}`);
  if (r.error) throw new EnvironmentError(`\`java -version\` failed: ${tail(r.output, 5)}. ${INSTALL_HINT}`);
  // `openjdk version "17.0.15" 2025-04-15` / `java version "1.8.0_392"`
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.output);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  if (!(major >= 17)) {
    throw new EnvironmentError(
      `${what} needs Java 17+, found: ${r.output.split('\n')[0]?.trim() ?? '?'}. ${INSTALL_HINT}`,
    );
  }
}

export async function checkMaven(what = 'the Kafka broker jars'): Promise<void> {
  const r = await run('mvn', ['-v'], 60_000);
  if (isMissing(r)) throw new EnvironmentError(`mvn (Maven) not found on PATH; it fetches ${what}. ${INSTALL_HINT}`);
  if (r.error) throw new EnvironmentError(`\`mvn -v\` failed: ${tail(r.output, 5)}. ${INSTALL_HINT}`);
}

/** `${XDG_CACHE_HOME:-~/.cache}/adstream/<name>`: where built or downloaded tools are kept. */
export function toolCacheDir(name: string): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'adstream', name);
}

function cacheRoot(version: string): string {
  return toolCacheDir(`kafka-${version}`);
}

/** Kafka 4.0/4.1 were built against log4j 2.24.x, 4.2+ against 2.25.x. */
function log4jVersionFor(version: string): string {
  const [maj, min] = version.split('.').map(Number);
  return (maj ?? 0) > 4 || (maj === 4 && (min ?? 0) >= 2) ? '2.25.3' : '2.24.3';
}

/**
 * Resolves the broker's runtime jars into `${XDG_CACHE_HOME:-~/.cache}/adstream/kafka-<version>/libs`
 * with Maven, unless a completion marker says an earlier run finished. Returns the libs dir.
 */
export async function ensureBrokerJars(version: string = KAFKA_VERSION, log: (msg: string) => void = () => {}): Promise<string> {
  const root = cacheRoot(version);
  const libs = join(root, 'libs');
  if (existsSync(join(root, MARKER))) return libs;

  await checkMaven();
  await mkdir(root, { recursive: true });
  // Download into a private folder, then move it into place: an interrupted or concurrent run
  // never leaves a half-filled libs/ that looks complete.
  const partial = join(root, `libs.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  log(`resolving Kafka ${version} broker jars with Maven into ${libs} (first run only)`);
  const started = Date.now();
  try {
    const r = await run(
      'mvn',
      [
        '-B',
        '-q',
        '-f',
        POM_PATH,
        DEPENDENCY_PLUGIN,
        '-DincludeScope=runtime',
        `-DoutputDirectory=${partial}`,
        `-Dkafka.version=${version}`,
        `-Dlog4j.version=${log4jVersionFor(version)}`,
      ],
      20 * 60_000,
    );
    if (r.error) {
      throw new EnvironmentError(
        `Maven could not resolve the Kafka ${version} broker jars (exit ${r.code}); ` +
          `it needs access to Maven Central (or a mirror in ~/.m2/settings.xml).\n${tail(r.output, 30)}`,
      );
    }
    const jars = (await readdir(partial)).filter((f) => f.endsWith('.jar'));
    if (jars.length === 0) throw new EnvironmentError(`Maven finished but copied no jars into ${partial}`);
    if (existsSync(join(root, MARKER))) return libs; // another process finished first
    await rm(libs, { recursive: true, force: true });
    await rename(partial, libs);
    await writeFile(join(root, MARKER), `kafka ${version}, ${jars.length} jars, ${new Date().toISOString()}\n`);
    log(`resolved ${jars.length} jars in ${Date.now() - started} ms`);
    return libs;
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

/** A Kafka cluster id: 16 random bytes, base64url without padding; Kafka avoids a leading '-'. */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function serverProperties(port: number, controllerPort: number, logDir: string): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${logDir}`,
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'num.network.threads=2',
    'num.io.threads=2',
    'background.threads=2',
    'log.cleaner.dedupe.buffer.size=2097152',
    '',
  ].join('\n');
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts a fresh single-node broker on two free loopback ports and waits until it answers. */
export async function startLocalBroker(opts: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const version = opts.kafkaVersion ?? KAFKA_VERSION;
  const log = opts.log ?? (() => {});
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;

  await checkJava();
  const libs = await ensureBrokerJars(version, log);
  const classpath = ['-cp', `${libs}/*`];
  const jvm = [...JVM_FLAGS, `-Dlog4j2.configurationFile=${LOG4J2_PATH}`, ...classpath];

  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();

  const dir = await mkdtemp(join(tmpdir(), 'adstream-kafka-'));
  let child: ChildProcess | undefined;
  try {
    const propsFile = join(dir, 'server.properties');
    await writeFile(propsFile, serverProperties(port, controllerPort, join(dir, 'data')));

    const fmt = await run('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId(), '-c', propsFile], 120_000);
    if (fmt.error) throw new Error(`kafka storage format failed (exit ${fmt.code}):\n${tail(fmt.output, 20)}`);

    const started = Date.now();
    const launch = (): GuardedProcess =>
      startGuarded({ dir, command: 'java', args: [...jvm, 'kafka.Kafka', propsFile], name: 'kafka-watchdog', onLine: (line) => log(`[kafka] ${line}`) });
    let current = launch();
    child = current.proc;
    const removeExitHandler = cleanUpOnExit(dir, () => current.killNow());

    /** Ends the JVM through the watchdog (SIGTERM), SIGKILL after the grace period; keepDir: for a restart. */
    const endJvm = (l: GuardedProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', keepDir = false): Promise<void> =>
      l.end(STOP_GRACE_MS, { signal, keepDir, onSlow: () => log(`broker did not stop within ${STOP_GRACE_MS} ms; killing it`) });

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        await endJvm(current);
        removeExitHandler();
        await rm(dir, { recursive: true, force: true });
      })());

    const bootstrap = `127.0.0.1:${port}`;
    try {
      await waitReady(bootstrap, current.proc, readyTimeoutMs, current.output);
    } catch (err) {
      await stop();
      throw err;
    }
    log(`Kafka ${version} broker ready at ${bootstrap} in ${Date.now() - started} ms (data in ${dir})`);
    return {
      bootstrap,
      dataDir: dir,
      stop,
      get running() {
        return !exited(current.proc);
      },
      async stopProcess(signal = 'SIGTERM') {
        if (stopping) throw new Error('the broker was stopped for good');
        await endJvm(current, signal, true); // the watchdog keeps dataDir this time
      },
      async startProcess() {
        if (stopping) throw new Error('the broker was stopped for good');
        if (!exited(current.proc)) return;
        const t0 = Date.now();
        current = launch();
        try {
          await waitReady(bootstrap, current.proc, readyTimeoutMs, current.output);
        } catch (err) {
          await stop();
          throw err;
        }
        log(`Kafka broker restarted at ${bootstrap} in ${Date.now() - t0} ms`);
      },
    };
  } catch (err) {
    if (!child) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function waitReady(bootstrap: string, proc: ChildProcess, timeoutMs: number, outputTail: () => string): Promise<void> {
  // Short timeouts and no retries: each attempt fails fast and the loop tries again.
  const kafka = createKafkaClient({
    clientId: 'adstream-local-broker-probe',
    brokers: [bootstrap],
    logger: silentLogger,
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 2_000,
    retry: { retries: 0, maxRetryTimeMs: 1_000 },
  });
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt made';
  while (Date.now() < deadline) {
    if (exited(proc)) {
      throw new Error(
        `Kafka broker exited during start (code ${proc.exitCode ?? proc.signalCode}). Last output:\n${outputTail()}`,
      );
    }
    let admin: KafkaAdmin | undefined;
    try {
      admin = await kafka.admin();
      if ((await admin.liveBrokers()) > 0) return;
      lastError = 'metadata lists no brokers yet';
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    } finally {
      await admin?.disconnect().catch(() => {});
    }
    await delay(200);
  }
  throw new Error(
    `Kafka broker at ${bootstrap} did not answer within ${timeoutMs} ms (last error: ${lastError}). Last output:\n${outputTail()}`,
  );
}
