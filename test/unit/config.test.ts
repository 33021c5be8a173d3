import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thrownBy } from '../support/rejection.js';
import { describeSettings, loadConfig, settingsMarkdownTable } from '../../src/app/config/load-config.js';
import { SETTINGS, type SettingName, type SettingSpec } from '../../src/app/config/settings.js';
import { ConfigError } from '../../src/domain/errors.js';

const NAMES = Object.keys(SETTINGS) as SettingName[];
const spec = (name: SettingName): SettingSpec => SETTINGS[name];
const namesOfKind = (kind: SettingSpec['kind']) => NAMES.filter((n) => spec(n).kind === kind);

/** The ConfigError fn throws. */
const configError = (fn: () => unknown): ConfigError => thrownBy(ConfigError, fn);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'adstream-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
let fileCounter = 0;
function configFile(content: unknown): string {
  const path = join(dir, `config-${++fileCounter}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('SETTINGS table', () => {
  it('every entry has a non-empty doc and a unique, UPPER_SNAKE env name', () => {
    const envs = NAMES.map((n) => spec(n).env);
    expect(new Set(envs).size).toBe(envs.length);
    for (const n of NAMES) {
      const s = spec(n);
      expect(s.doc.trim().length, n).toBeGreaterThan(0);
      expect(s.env, n).toMatch(/^[A-Z][A-Z0-9_]*$/);
    }
    expect(envs).not.toContain('CONFIG_FILE'); // reserved for the file path
  });

  it('numeric settings have a range containing their default; enums list their default', () => {
    for (const n of NAMES) {
      const s = spec(n);
      if (s.kind === 'int' || s.kind === 'number') {
        expect(s.min, n).toBeDefined();
        expect(s.max, n).toBeDefined();
        expect(s.min!, n).toBeLessThanOrEqual(s.max!);
        expect(typeof s.default, n).toBe('number');
        expect(s.default as number, n).toBeGreaterThanOrEqual(s.min!);
        expect(s.default as number, n).toBeLessThanOrEqual(s.max!);
        if (s.kind === 'int') expect(Number.isInteger(s.default), n).toBe(true);
      }
      if (s.kind === 'enum') {
        expect(s.values?.length, n).toBeGreaterThan(0);
        expect(s.values, n).toContain(s.default);
      }
    }
  });
});

describe('loadConfig defaults', () => {
  it('loads every default with an empty env', () => {
    const config = loadConfig({ env: {} });
    expect(Object.keys(config).sort()).toEqual([...NAMES].sort());
    for (const n of NAMES) {
      const d = spec(n).default;
      expect(config[n], n).toEqual(d);
    }
    // A few concrete values, so a broken table would not pass by comparing with itself.
    expect(config.kafkaBrokers).toBeNull();
    expect(config.topK).toBe(10);
    expect(config.createTopics).toBe(true);
    expect(config.logLevel).toBe('info');
    expect(config.topicClicks).toBe('clicks');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats an empty env variable as unset', () => {
    const config = loadConfig({ env: { TOP_K: '', LOG_LEVEL: '', KAFKA_BROKERS: '' } });
    expect(config.topK).toBe(10);
    expect(config.logLevel).toBe('info');
    expect(config.kafkaBrokers).toBeNull();
  });

  it('does not read process.env when an env is given', () => {
    const saved = process.env.TOP_K;
    process.env.TOP_K = '17';
    try {
      expect(loadConfig({ env: {} }).topK).toBe(10);
      expect(loadConfig().topK).toBe(17);
    } finally {
      if (saved === undefined) delete process.env.TOP_K;
      else process.env.TOP_K = saved;
    }
  });
});

describe('loadConfig parses env values', () => {
  it('integers and numbers, with surrounding spaces', () => {
    const config = loadConfig({ env: { TOPIC_PARTITIONS: ' 12 ', TOP_K: '1000', HTTP_PORT: '0', INTEREST_HALF_LIFE_S: '1.5', MAX_CLOCK_SKEW_S: '0' } });
    expect(config.topicPartitions).toBe(12);
    expect(config.topK).toBe(1000); // max is inclusive
    expect(config.httpPort).toBe(0); // min is inclusive
    expect(config.interestHalfLifeS).toBe(1.5);
    expect(config.maxClockSkewS).toBe(0);
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    [' yes ', true],
    ['Yes', true],
    ['1', true],
    ['on', true],
    ['false', false],
    ['False', false],
    ['no', false],
    ['NO', false],
    ['0', false],
    ['off', false],
  ])('boolean %j -> %s', (text, want) => {
    expect(loadConfig({ env: { CREATE_TOPICS: text } }).createTopics).toBe(want);
  });

  it('lists: comma-separated, spaces trimmed, empty items dropped, frozen', () => {
    const config = loadConfig({ env: { KAFKA_BROKERS: ' kafka-1:9092 ,kafka-2:9092,, kafka-3:9093 , ' } });
    expect(config.kafkaBrokers).toEqual(['kafka-1:9092', 'kafka-2:9092', 'kafka-3:9093']);
    expect(Object.isFrozen(config.kafkaBrokers)).toBe(true);
    expect(loadConfig({ env: { KAFKA_BROKERS: 'localhost:9092' } }).kafkaBrokers).toEqual(['localhost:9092']);
  });

  it('enums and strings are trimmed', () => {
    const config = loadConfig({ env: { LOG_LEVEL: ' debug ', TOPIC_CLICKS: '  clicks-v2 ', KAFKA_CLIENT_ID: 'adstream-测试' } });
    expect(config.logLevel).toBe('debug');
    expect(config.topicClicks).toBe('clicks-v2');
    expect(config.kafkaClientId).toBe('adstream-测试');
    for (const v of spec('logLevel').values!) expect(loadConfig({ env: { LOG_LEVEL: v } }).logLevel).toBe(v);
  });
});

describe('loadConfig rejects invalid env values with a ConfigError naming the variable and what it allows', () => {
  it.each(namesOfKind('int'))('%s: non-integer values', (name) => {
    const s = spec(name);
    for (const bad of ['abc', '3.5', '12abc', 'NaN', 'Infinity', ' ']) {
      const err = configError(() => loadConfig({ env: { [s.env]: bad } }));
      expect(err.setting).toBe(s.env);
      expect(err.message).toContain(s.env);
      expect(err.message).toMatch(/integer/);
    }
  });

  it.each(namesOfKind('number'))('%s: non-numeric values', (name) => {
    const s = spec(name);
    for (const bad of ['abc', '1,5', 'Infinity', '\t']) {
      const err = configError(() => loadConfig({ env: { [s.env]: bad } }));
      expect(err.setting).toBe(s.env);
      expect(err.message).toMatch(/number/);
    }
  });

  /**
   * The documented range of every numeric setting, stated here rather than read back from SETTINGS:
   * a bound changed by mistake in a settings table fails this test. A new numeric setting must be
   * added (the first test says which).
   */
  const GiB = 1024 ** 3;
  const BOUNDS: Record<string, readonly [number, number]> = {
    topicPartitions: [1, 10_000],
    topicReplication: [1, 16],
    sessionTimeoutMs: [6_000, 300_000],
    chunkMaxRecords: [1, 100_000],
    commitIntervalMs: [1, 60_000],
    produceMaxBytes: [0, GiB],
    maxRecordBytes: [1024, 100 * 1024 ** 2],
    maxTextChars: [1, 1_000_000],
    maxClockSkewS: [0, 86_400],
    maxEventAgeS: [1, 3_153_600_000],
    imageCacheBytes: [0, 64 * GiB],
    itemCacheBytes: [0, 64 * GiB],
    catalogUploadIntervalMs: [0, 3_600_000],
    topK: [1, 1000],
    emitIntervalMs: [0, 86_400_000],
    deadLetterMaxValueBytes: [0, 100 * 1024 ** 2],
    attributionWindowS: [1, 604_800],
    attributionMaxCaptures: [1, 10_000_000],
    attributionMaxPending: [1, 10_000_000],
    inferenceWorkers: [0, 256],
    intraOpThreads: [1, 256],
    maxBatchSize: [1, 65_536],
    maxQueueDelayMs: [0, 10_000],
    maxQueueItems: [1, 10_000_000],
    embeddingDim: [8, 4096],
    fusedDim: [8, 4096],
    fusionMemoRows: [0, 1_048_576],
    weightImage: [0, 1000],
    weightText: [0, 1000],
    weightClick: [0, 1000],
    ctrWatchIntervalS: [0, 86_400],
    imageMaxPixels: [1, 1_000_000_000],
    imageFetchTimeoutMs: [1, 600_000],
    imageMaxBytes: [1, GiB],
    interestHalfLifeS: [1, 31_536_000],
    interestsPerUser: [1, 32],
    newInterestThreshold: [-1, 1],
    userCacheMaxEntries: [1, 100_000_000],
    userCacheMaxBytes: [65_536, 1024 * GiB],
    userTtlS: [1, 31_536_000],
    httpPort: [0, 65_535],
    schemaRegistryTimeoutMs: [100, 120_000],
    retrievalExactBelow: [0, 1_000_000_000],
    annConnectivity: [2, 256],
    retrievalCacheRows: [0, 100000000],
    retrievalPoolDrift: [0, 2],
    retrievalPoolSize: [1, 10_000],
    retrievalPoolMaxAgeS: [1, 86_400],
    retrievalPoolUsers: [0, 100_000_000],
    retrievalPoolCheckEvery: [0, 1_000_000_000],
    annExpansionAdd: [1, 4096],
    annExpansionSearch: [1, 4096],
  };

  it('every numeric setting has its documented range listed here', () => {
    expect(Object.keys(BOUNDS).sort()).toEqual([...namesOfKind('int'), ...namesOfKind('number')].sort());
  });

  it.each([...namesOfKind('int'), ...namesOfKind('number')])('%s: out of range, just outside each bound', (name) => {
    const s = spec(name);
    const [min, max] = BOUNDS[name]!;
    const step = s.kind === 'int' ? 1 : 0.5;
    for (const bad of [min - step, max + step]) {
      const err = configError(() => loadConfig({ env: { [s.env]: String(bad) } }));
      expect(err.setting).toBe(s.env);
      expect(err.message).toContain(s.env);
      expect(err.message).toContain(`between ${min} and ${max}`);
      expect(err.message).toContain(String(bad));
    }
    // The bounds themselves are accepted, the rule between the queue and a chunk given room (the
    // largest queue, the smallest chunk: see "rules between settings" below).
    const room = { MAX_QUEUE_ITEMS: '10000000', CHUNK_MAX_RECORDS: '1', TOP_K: '1', INTERESTS_PER_USER: '1' };
    if (name === 'maxQueueItems') {
      // Its own minimum (1) fits the smallest chunk's request (1 user x INTERESTS_PER_USER=1).
      expect(loadConfig({ env: { ...room, [s.env]: String(min) } })[name]).toBe(min);
    } else {
      expect(loadConfig({ env: { ...room, [s.env]: String(min) } })[name]).toBe(min);
    }
    expect(loadConfig({ env: { ...room, [s.env]: String(max) } })[name]).toBe(max);
  });

  it('bad enum value lists the allowed values', () => {
    for (const bad of ['verbose', 'INFO', 'warning']) {
      const err = configError(() => loadConfig({ env: { LOG_LEVEL: bad } }));
      expect(err.setting).toBe('LOG_LEVEL');
      expect(err.message).toContain('LOG_LEVEL');
      expect(err.message).toContain(spec('logLevel').values!.join(', '));
      expect(err.message).toContain(bad);
    }
  });

  it('bad boolean says true or false', () => {
    for (const bad of ['maybe', '2', 'y', 'enabled']) {
      const err = configError(() => loadConfig({ env: { CREATE_TOPICS: bad } }));
      expect(err.setting).toBe('CREATE_TOPICS');
      expect(err.message).toContain('CREATE_TOPICS');
      expect(err.message).toMatch(/true or false/);
      expect(err.message).toContain(bad);
    }
  });

  it('empty list', () => {
    for (const bad of [',', ' , ,', '   ']) {
      const err = configError(() => loadConfig({ env: { KAFKA_BROKERS: bad } }));
      expect(err.setting).toBe('KAFKA_BROKERS');
      expect(err.message).toContain('KAFKA_BROKERS');
      expect(err.message).toMatch(/at least one/);
    }
  });

  it('blank string', () => {
    const err = configError(() => loadConfig({ env: { GROUP_ID: '   ' } }));
    expect(err.setting).toBe('GROUP_ID');
    expect(err.message).toMatch(/must not be empty/);
  });
});

describe('loadConfig applies the rules between settings', () => {
  // The bounds stated here, not computed with setting-rules.ts: a wrong formula there fails these.
  it('MAX_QUEUE_ITEMS below a chunk\'s scorer request (users x INTERESTS_PER_USER) is refused, naming the bound; at the bound it loads', () => {
    // TOP_K large: the CTR model's rows ride inside the scorer's request and are not queued items.
    const env = { CHUNK_MAX_RECORDS: '50', TOP_K: '500', INTERESTS_PER_USER: '32' };
    const err = configError(() => loadConfig({ env: { ...env, MAX_QUEUE_ITEMS: '1599' } }));
    expect(err.setting).toBe('MAX_QUEUE_ITEMS');
    expect(err.message).toContain('MAX_QUEUE_ITEMS: 1599 is below the largest inference request a chunk can make, 1600 items');
    expect(err.message).toContain('CHUNK_MAX_RECORDS=50 users x INTERESTS_PER_USER=32 interests');
    expect(err.message).toContain('at least 1600');
    expect(loadConfig({ env: { ...env, MAX_QUEUE_ITEMS: '1600' } }).maxQueueItems).toBe(1600);
  });

  it('the rule holds whichever source sets the values: a chunk raised by a file or an override is checked too', () => {
    const file = configFile({ chunkMaxRecords: 20000 }); // 20000 x INTERESTS_PER_USER=3 = 60000 > the default queue (50000)
    expect(configError(() => loadConfig({ env: {}, file })).message).toContain('60000 items');
    expect(configError(() => loadConfig({ env: {}, overrides: { interestsPerUser: 32, chunkMaxRecords: 2000 } })).message).toContain('2000 users x INTERESTS_PER_USER=32 interests');
    expect(loadConfig({ env: { MAX_QUEUE_ITEMS: '60000' }, file }).chunkMaxRecords).toBe(20000);
  });
});

describe('loadConfig with a JSON config file', () => {
  it('reads camelCase keys, with JSON types or strings', () => {
    const file = configFile({ topK: 25, logLevel: 'debug', kafkaBrokers: ['a:1', ' b:2 '], createTopics: false, interestHalfLifeS: '120', topicAds: 'ads-v2' });
    const config = loadConfig({ env: {}, file });
    expect(config.topK).toBe(25);
    expect(config.logLevel).toBe('debug');
    expect(config.kafkaBrokers).toEqual(['a:1', 'b:2']);
    expect(config.createTopics).toBe(false);
    expect(config.interestHalfLifeS).toBe(120);
    expect(config.topicAds).toBe('ads-v2');
    // Untouched settings keep their defaults.
    expect(config.topicClicks).toBe(SETTINGS.topicClicks.default);
  });

  it('is found through CONFIG_FILE in the env', () => {
    const file = configFile({ topK: 33 });
    expect(loadConfig({ env: { CONFIG_FILE: file } }).topK).toBe(33);
    // An explicit file wins over CONFIG_FILE.
    const other = configFile({ topK: 44 });
    expect(loadConfig({ env: { CONFIG_FILE: file }, file: other }).topK).toBe(44);
  });

  it('env overrides the file, overrides beat env', () => {
    const file = configFile({ topK: 25, logLevel: 'debug', createTopics: false });
    const env = { TOP_K: '30', CREATE_TOPICS: 'yes' };
    const fromEnv = loadConfig({ env, file });
    expect(fromEnv.topK).toBe(30);
    expect(fromEnv.createTopics).toBe(true);
    expect(fromEnv.logLevel).toBe('debug'); // only in the file

    const overridden = loadConfig({ env, file, overrides: { topK: 40, createTopics: 'no', logLevel: 'warn' } });
    expect(overridden.topK).toBe(40);
    expect(overridden.createTopics).toBe(false);
    expect(overridden.logLevel).toBe('warn');
  });

  it('an invalid value in the file names the file and key', () => {
    const file = configFile({ topK: 0 });
    const err = configError(() => loadConfig({ env: {}, file }));
    expect(err.message).toContain(file);
    expect(err.message).toContain('topK');
    expect(err.message).toContain('between 1 and 1000');
    // The env wins over a bad file value: it is never looked at.
    expect(loadConfig({ env: { TOP_K: '5' }, file }).topK).toBe(5);
  });

  it('a null in the file is an error for a setting that has a default, and unset for one that has none', () => {
    const err = configError(() => loadConfig({ env: {}, file: configFile({ topK: null }) }));
    expect(err.message).toContain('topK');
    expect(loadConfig({ env: {}, file: configFile({ kafkaBrokers: null }) }).kafkaBrokers).toBeNull();
  });

  it('a blank number in the file is an error, not 0', () => {
    const err = configError(() => loadConfig({ env: {}, file: configFile({ httpPort: '' }) }));
    expect(err.message).toContain('httpPort');
    expect(err.message).toMatch(/integer/);
  });

  it('an unknown key is an error naming it', () => {
    const file = configFile({ topK: 5, topk: 6 });
    const err = configError(() => loadConfig({ env: {}, file }));
    expect(err.setting).toBe('CONFIG_FILE');
    expect(err.message).toContain('"topk"');
    expect(err.message).toContain(file);
  });

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__'])('an inherited property name (%s) is an unknown key too', (key) => {
    const file = configFile(`{"${key}": 1}`);
    const err = configError(() => loadConfig({ env: {}, file }));
    expect(err.setting).toBe('CONFIG_FILE');
    expect(err.message).toContain(`"${key}"`);
  });

  it('env names (UPPER_SNAKE) are not accepted as file keys', () => {
    const err = configError(() => loadConfig({ env: {}, file: configFile({ TOP_K: 5 }) }));
    expect(err.message).toContain('"TOP_K"');
  });

  it('unreadable, non-JSON or non-object files are ConfigErrors on CONFIG_FILE', () => {
    for (const file of [join(dir, 'missing.json'), configFile('{ topK: 5 }'), configFile('[1,2]'), configFile('null'), configFile('"topK"')]) {
      const err = configError(() => loadConfig({ env: {}, file }));
      expect(err.setting).toBe('CONFIG_FILE');
      expect(err.message).toContain(file);
    }
  });
});

describe('loadConfig overrides', () => {
  it('beat env and are validated, naming the setting key', () => {
    expect(loadConfig({ env: { TOP_K: '30' }, overrides: { topK: 7 } }).topK).toBe(7);
    expect(loadConfig({ env: { KAFKA_BROKERS: 'x:1' }, overrides: { kafkaBrokers: ['y:2', 'z:3'] } }).kafkaBrokers).toEqual(['y:2', 'z:3']);
    const err = configError(() => loadConfig({ env: {}, overrides: { topK: 1001 } }));
    expect(err.setting).toBe('topK');
    expect(err.message).toContain('between 1 and 1000');
    // An override wins even over an invalid env value.
    expect(loadConfig({ env: { TOP_K: 'nope' }, overrides: { topK: 3 } }).topK).toBe(3);
  });

  it('an undefined override falls through to env', () => {
    expect(loadConfig({ env: { TOP_K: '30' }, overrides: { topK: undefined } }).topK).toBe(30);
  });
});

describe('describeSettings and settingsMarkdownTable', () => {
  it('describeSettings has a line per setting with env name and default', () => {
    const lines = describeSettings().split('\n');
    expect(lines).toHaveLength(NAMES.length);
    NAMES.forEach((n, i) => {
      expect(lines[i]).toContain(spec(n).env);
      expect(lines[i]).toContain(spec(n).doc);
    });
    expect(lines.find((l) => l.includes('KAFKA_BROKERS'))).toContain('[default: (unset)]');
    expect(lines.find((l) => l.includes('TOP_K '))).toContain('[default: 10]');
  });

  it('settingsMarkdownTable has a header and one row per setting', () => {
    const rows = settingsMarkdownTable().split('\n');
    expect(rows[0]).toBe('| Variable | Config-file key | Default | Allowed | What it does |');
    expect(rows).toHaveLength(NAMES.length + 2);
    NAMES.forEach((n, i) => {
      const row = rows[i + 2]!;
      expect(row.startsWith(`| \`${spec(n).env}\` | \`${n}\` |`)).toBe(true);
      // Five cells: a row splits into 7 parts on '|' (outer empties included) unless docs contain '|'.
      expect(row.split(' | ')).toHaveLength(5);
    });
    expect(rows.find((r) => r.includes('`TOP_K`'))).toContain('int 1..1000');
    expect(rows.find((r) => r.includes('`LOG_LEVEL`'))).toContain('one of debug, info, warn, error, silent');
    expect(rows.find((r) => r.includes('`KAFKA_BROKERS`'))).toContain('_unset_');
  });

  it("README.md's configuration table is settingsMarkdownTable()", () => {
    const BEGIN = '<!-- settings:begin -->';
    const END = '<!-- settings:end -->';
    const fix = `paste the output of settingsMarkdownTable() (src/app/config/load-config.ts) between the lines ${BEGIN} and ${END} in README.md`;
    const readme = new URL('../../README.md', import.meta.url);
    if (!existsSync(readme)) expect.fail(`README.md is missing: create it and ${fix}`);
    const text = readFileSync(readme, 'utf8');
    const begin = text.indexOf(BEGIN);
    const end = text.indexOf(END);
    if (begin < 0 || end < 0 || end < begin) expect.fail(`README.md lacks the markers ${BEGIN} ... ${END} in that order: ${fix}`);
    const between = text.slice(begin + BEGIN.length, end).trim();
    expect(between, `README.md's settings table is stale: ${fix}`).toBe(settingsMarkdownTable().trim());
  });
});
