/**
 * A real Prometheus server for the integration tests (Debian's `prometheus` package, 2.42+): it
 * scrapes the given targets, evaluates the given rule files, and answers PromQL over its HTTP API.
 *
 * Prometheus never outlives the test process, the same way src/devtools/local-broker.ts keeps its
 * JVM: it runs under a small /bin/sh watchdog (src/devtools/guarded-process.ts) whose stdin is a pipe
 * from this process. When that pipe
 * closes (stop(), or this process dying for any reason, SIGKILL included) the watchdog sends
 * Prometheus SIGTERM, waits for it and removes its temp dir.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanUpOnExit, exited, freePort, startGuarded } from '../../src/devtools/guarded-process.js';

/** The operability files under deploy/ that the tests check. */
export const DEPLOY = {
  prometheusConfig: fileURLToPath(new URL('../../deploy/prometheus/prometheus.yml', import.meta.url)),
  rules: fileURLToPath(new URL('../../deploy/prometheus/rules.yml', import.meta.url)),
  rulesTest: fileURLToPath(new URL('../../deploy/prometheus/rules.test.yml', import.meta.url)),
  dashboard: fileURLToPath(new URL('../../deploy/grafana/dashboards/adstream.json', import.meta.url)),
} as const;

/** One query of a dashboard panel. */
export interface DashboardTarget {
  readonly panel: string;
  readonly refId: string;
  readonly legendFormat: string;
  /** As written in the dashboard, with Grafana variables such as $__rate_interval. */
  readonly expr: string;
  readonly datasourceUid: string | undefined;
}

interface PanelJson {
  title?: string;
  panels?: PanelJson[];
  targets?: { refId?: string; expr?: string; legendFormat?: string; datasource?: { uid?: string } }[];
}

/** Every target of every panel (rows' nested panels included) of a Grafana dashboard JSON file. */
export function dashboardTargets(file: string = DEPLOY.dashboard): DashboardTarget[] {
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels?: PanelJson[] };
  const out: DashboardTarget[] = [];
  const walk = (panels: PanelJson[] | undefined): void => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) {
        out.push({ panel: p.title ?? '?', refId: t.refId ?? '?', legendFormat: t.legendFormat ?? '', expr: t.expr ?? '', datasourceUid: t.datasource?.uid });
      }
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** A dashboard expr as Prometheus can run it: Grafana's $__rate_interval becomes a fixed range. */
export function runnableExpr(expr: string, rateInterval = '1m'): string {
  return expr.replaceAll('$__rate_interval', rateInterval).replaceAll('${__rate_interval}', rateInterval);
}

export const PROMETHEUS_INSTALL_HINT = "install Debian's prometheus package (`apt-get install prometheus`; .ci/run does), which provides `prometheus` and `promtool`";

/** One series of an instant vector, as /api/v1/query returns it. */
export interface PromSample {
  readonly metric: Record<string, string>;
  /** [unix seconds, value as a string: "0.25", "NaN", "+Inf"] */
  readonly value: [number, string];
}

export interface PromQueryResponse {
  readonly status: 'success' | 'error';
  readonly data?: { resultType: string; result: PromSample[] | [number, string] };
  readonly errorType?: string;
  readonly error?: string;
  readonly warnings?: string[];
}

export interface RunningPrometheus {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** The temp dir with prometheus.yml and the TSDB (removed by stop()). */
  readonly dir: string;
  /** Instant query at the current time; resolves with the API's JSON whatever its status. */
  query(expr: string): Promise<PromQueryResponse>;
  /** GET an API path (e.g. /api/v1/rules) and parse its JSON. */
  api<T = unknown>(path: string): Promise<T>;
  /** The last lines Prometheus wrote (for failure messages). */
  output(): string;
  /** SIGTERM (through the watchdog), SIGKILL after 10 s; removes dir. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** host:port targets scraped at /metrics under job `jobName`. */
  readonly targets: readonly string[];
  /** Absolute paths of rule files to load. */
  readonly ruleFiles?: readonly string[];
  readonly jobName?: string;
  readonly scrapeIntervalS?: number;
  readonly evaluationIntervalS?: number;
  readonly readyTimeoutMs?: number;
}

const STOP_GRACE_MS = 10_000;

/** Throws with the install hint unless `prometheus --version` runs. */
export async function checkPrometheusInstalled(binary = 'prometheus'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['--version'], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new Error(missing ? `${binary} not found on PATH: ${PROMETHEUS_INSTALL_HINT}` : `\`${binary} --version\` failed: ${err.message}\n${stdout}${stderr}`));
        return;
      }
      resolve(`${stdout}${stderr}`.split('\n')[0] ?? '');
    });
  });
}

function configYaml(o: PrometheusOptions): string {
  const lines = [
    'global:',
    `  scrape_interval: ${o.scrapeIntervalS ?? 1}s`,
    `  scrape_timeout: ${o.scrapeIntervalS ?? 1}s`,
    `  evaluation_interval: ${o.evaluationIntervalS ?? 1}s`,
    'rule_files:',
    ...(o.ruleFiles ?? []).map((f) => `  - ${JSON.stringify(f)}`),
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(o.jobName ?? 'adstream')}`,
    '    static_configs:',
    `      - targets: ${JSON.stringify(o.targets)}`,
    '',
  ];
  if ((o.ruleFiles ?? []).length === 0) lines.splice(lines.indexOf('rule_files:'), 1);
  return lines.join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts Prometheus on a free loopback port with a generated config, and waits for /-/ready. */
export async function startPrometheus(o: PrometheusOptions): Promise<RunningPrometheus> {
  await checkPrometheusInstalled();
  const dir = await mkdtemp(join(tmpdir(), 'adstream-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, configYaml(o));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ];
  const prometheus = startGuarded({ dir, command: 'prometheus', args, name: 'prometheus-watchdog' });
  const { proc, output } = prometheus;
  const removeExitHandler = cleanUpOnExit(dir, prometheus.killNow);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await prometheus.end(STOP_GRACE_MS);
      removeExitHandler();
      await rm(dir, { recursive: true, force: true });
    })());

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    return (await res.json()) as T;
  };
  const query = (expr: string): Promise<PromQueryResponse> => api<PromQueryResponse>(`/api/v1/query?query=${encodeURIComponent(expr)}`);

  const deadline = Date.now() + (o.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited(proc)) {
      await stop();
      throw new Error(`prometheus exited during start (code ${proc.exitCode ?? proc.signalCode}). Last output:\n${output()}`);
    }
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus at ${url} not ready within ${o.readyTimeoutMs ?? 30_000} ms. Last output:\n${output()}`);
    }
    await sleep(100);
  }
  return { url, dir, query, api, output, stop };
}

/** The numbers of an instant vector's samples ("NaN" and "+Inf" included, as NaN and Infinity). */
export function sampleValues(r: PromQueryResponse): number[] {
  const result = r.data?.result;
  if (!Array.isArray(result) || r.data?.resultType !== 'vector') return [];
  return (result as PromSample[]).map((s) => Number(s.value[1]));
}
