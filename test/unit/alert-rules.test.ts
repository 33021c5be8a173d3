/**
 * The operability files under deploy/: Prometheus rules and config checked and unit-tested with
 * promtool (Debian's prometheus package; the test fails, not skips, without it), every alert tested
 * both ways, and the Grafana dashboard's queries checked against the metrics the code defines.
 * That the queries return data from a running processor is test/integration/prometheus.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CacheMetrics, InferenceMetrics } from '../../src/metrics/inference-metrics.js';
import { ProcessorMetrics } from '../../src/metrics/processor-metrics.js';
import { DEPLOY, PROMETHEUS_INSTALL_HINT, dashboardTargets, runnableExpr } from '../support/prometheus.js';

interface Run {
  code: number;
  output: string;
}

function promtool(args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`promtool not found on PATH: ${PROMETHEUS_INSTALL_HINT}`));
        return;
      }
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output });
    });
  });
}

const rulesText = await readFile(DEPLOY.rules, 'utf8');
const rulesTestText = await readFile(DEPLOY.rulesTest, 'utf8');
const alertNames = [...rulesText.matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((m) => m[1]!);
const recordNames = [...rulesText.matchAll(/^\s*- record:\s*(\S+)\s*$/gm)].map((m) => m[1]!);

/** Each rule's text block in rules.yml, from its `- alert:`/`- record:` line to the next rule. */
function ruleBlocks(): Map<string, string> {
  const blocks = new Map<string, string>();
  const starts = [...rulesText.matchAll(/^\s*- (?:alert|record):\s*(\S+)\s*$/gm)];
  starts.forEach((m, i) => {
    const end = i + 1 < starts.length ? starts[i + 1]!.index : rulesText.length;
    blocks.set(m[1]!, rulesText.slice(m.index, end).replace(/^\s*- name:.*$[\s\S]*/m, ''));
  });
  return blocks;
}

/**
 * The metric families the code defines (adstream_* from ProcessorMetrics, InferenceMetrics,
 * CacheMetrics and prom-client's default metrics with the adstream_ prefix), with their types.
 */
async function definedMetrics(): Promise<Map<string, string>> {
  const m = new ProcessorMetrics({ version: 'test' });
  // Register the inference and cache families unless ProcessorMetrics already does.
  if (!m.registry.getSingleMetric('adstream_inference_items_total')) new InferenceMetrics(m.registry);
  if (!m.registry.getSingleMetric('adstream_embedding_cache_requests_total')) new CacheMetrics(m.registry);
  const families = await m.registry.getMetricsAsJSON();
  return new Map(families.map((f) => [f.name, String(f.type)]));
}

/** adstream_* series names in a PromQL expression, mapped to their family (histogram suffixes cut). */
function familiesIn(expr: string, defined: Map<string, string>): { family: string; known: boolean }[] {
  return [...new Set([...expr.matchAll(/\b(adstream_[a-z0-9_]+)/g)].map((m) => m[1]!))].map((name) => {
    if (defined.has(name)) return { family: name, known: true };
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return { family: base, known: base !== name && defined.get(base) === 'histogram' };
  });
}

describe('Prometheus rules and config (promtool)', () => {
  it('rules.yml passes `promtool check rules` with duplicate-rule linting fatal', async () => {
    const r = await promtool(['check', 'rules', '--lint=all', '--lint-fatal', DEPLOY.rules]);
    expect(r.output).toContain(`SUCCESS: ${alertNames.length + recordNames.length} rules found`);
    expect(r.code, r.output).toBe(0);
  });

  it('prometheus.yml passes `promtool check config` (rule files resolved next to it)', async () => {
    // Run from the config's folder as well as from elsewhere: rule_files are relative to the file.
    for (const cwd of [dirname(DEPLOY.prometheusConfig), tmpdir()]) {
      const r = await promtool(['check', 'config', DEPLOY.prometheusConfig], cwd);
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
      expect(r.output).toContain('SUCCESS: 1 rule files found');
      expect(r.output).toContain(`SUCCESS: ${alertNames.length + recordNames.length} rules found`);
    }
  });

  it('rules.test.yml passes `promtool test rules`', async () => {
    const r = await promtool(['test', 'rules', DEPLOY.rulesTest]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
    expect(r.output).not.toContain('FAILED');
  });

  it('the required alerts exist, each with a severity, a summary, a description and a runbook', () => {
    expect(alertNames).toEqual(expect.arrayContaining(['E2ELatencyP99AboveSLO', 'ConsumerLagGrowing', 'DeadLetterRateHigh', 'NoThroughput', 'InstanceNotReady']));
    const blocks = ruleBlocks();
    for (const name of alertNames) {
      const block = blocks.get(name)!;
      expect(block, name).toMatch(/^\s+severity:\s*(critical|warning)\s*$/m);
      for (const annotation of ['summary', 'description', 'runbook']) expect(block, `${name} ${annotation}`).toMatch(new RegExp(`^\\s+${annotation}:\\s*\\S`, 'm'));
    }
    // The SLO is stated where the on-call reads it, and matches the threshold.
    expect(blocks.get('E2ELatencyP99AboveSLO')).toMatch(/expr: adstream:e2e_latency_seconds:p99_5m > 0\.5\n/);
    expect(blocks.get('E2ELatencyP99AboveSLO')).toMatch(/description: "SLO: 99 % of scored outputs .* within 500 ms/);
  });

  it('every alert has a test case where it fires and one where it must not', () => {
    // Cases are written `alertname: X` directly followed by `exp_alerts:` (`[]` = must not fire).
    const cases = [...rulesTestText.matchAll(/^\s*alertname:\s*(\S+)\s*\n\s*exp_alerts:[ \t]*(\[\])?/gm)].map((m) => ({ alert: m[1]!, fires: m[2] === undefined }));
    const alertnameLines = [...rulesTestText.matchAll(/^\s*alertname:/gm)].length;
    expect(cases.length, 'every `alertname:` line must be directly followed by `exp_alerts:`').toBe(alertnameLines);
    for (const c of cases) expect(alertNames, `rules.test.yml tests an alert that rules.yml lacks: ${c.alert}`).toContain(c.alert);
    const missing = alertNames.flatMap((name) => [
      ...(cases.some((c) => c.alert === name && c.fires) ? [] : [`${name}: no case where it fires`]),
      ...(cases.some((c) => c.alert === name && !c.fires) ? [] : [`${name}: no case where it must not fire (exp_alerts: [])`]),
    ]);
    expect(missing).toEqual([]);
  });

  it('rules read only metrics the code defines', async () => {
    const defined = await definedMetrics();
    const unknown = [...ruleBlocks()].flatMap(([rule, block]) => familiesIn(block, defined).filter((f) => !f.known).map((f) => `${rule}: ${f.family}`));
    expect(unknown).toEqual([]);
  });
});

describe('Grafana dashboard', () => {
  const dashboard = dashboardTargets();

  it('has a ${datasource} variable that every query uses', async () => {
    const json = JSON.parse(await readFile(DEPLOY.dashboard, 'utf8')) as { schemaVersion: number; uid: string; templating: { list: { name: string; type: string; query: string }[] } };
    expect(json.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(json.uid).toBe('adstream');
    expect(json.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    expect(dashboard.length).toBeGreaterThan(20);
    for (const t of dashboard) expect(t.datasourceUid, `${t.panel} ${t.refId}`).toBe('${datasource}');
  });

  it('covers the required views', () => {
    const exprs = dashboard.map((t) => t.expr).join('\n');
    for (const needle of [
      'histogram_quantile(0.99, sum by (le) (rate(adstream_e2e_latency_seconds_bucket',
      'histogram_quantile(0.50, sum by (le) (rate(adstream_e2e_latency_seconds_bucket',
      'histogram_quantile(0.95, sum by (le) (rate(adstream_e2e_latency_seconds_bucket',
      'sum by (le, stage) (rate(adstream_stage_duration_seconds_bucket',
      'sum by (topic) (rate(adstream_records_in_total',
      'adstream_scored_out_total',
      'sum by (reason) (rate(adstream_dead_letters_total',
      'sum by (topic, partition) (adstream_consumer_lag_records)',
      'adstream_chunk_records_bucket',
      'sum by (le, model) (rate(adstream_inference_batch_size_bucket',
      'adstream_inference_queue_wait_seconds_bucket',
      'adstream_inference_compute_seconds_bucket',
      'adstream_embedding_cache_requests_total{result="hit"}',
      'adstream_inference_provider_info',
      'adstream_ready',
      'adstream_event_loop_delay_p99_seconds',
      'adstream_process_resident_memory_bytes',
      'adstream_process_cpu_seconds_total',
    ]) {
      expect(exprs).toContain(needle);
    }
  });

  it('queries only metrics the code defines, and no Grafana variable but $__rate_interval', async () => {
    const defined = await definedMetrics();
    const problems = dashboard.flatMap((t) => [
      ...familiesIn(t.expr, defined).filter((f) => !f.known).map((f) => `${t.panel} ${t.refId}: unknown metric ${f.family}`),
      ...[...t.expr.replaceAll('$__rate_interval', '').matchAll(/\$\{?\w+\}?/g)].map((m) => `${t.panel} ${t.refId}: variable ${m[0]}`),
    ]);
    expect(problems).toEqual([]);
  });

  it('every query is valid PromQL (parsed by promtool as recording rules)', async () => {
    // promtool 2.42 has no "parse this query" command, but `check rules` parses every expr.
    const dir = await mkdtemp(join(tmpdir(), 'adstream-dashboard-exprs-'));
    try {
      const file = join(dir, 'dashboard-exprs.yml');
      const rules = dashboard.map((t, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(runnableExpr(t.expr))}`);
      await writeFile(file, ['groups:', '  - name: dashboard', '    rules:', ...rules, ''].join('\n'));
      const r = await promtool(['check', 'rules', '--lint=none', file]);
      expect(r.code, r.output).toBe(0);
      expect(r.output).toContain(`SUCCESS: ${dashboard.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
