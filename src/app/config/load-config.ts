import { readFileSync } from 'node:fs';
import { ConfigError } from '../../domain/errors.js';
import { coerceSetting, type RawSetting, type SettingSpec } from '../../util/settings.js';
import { checkSettingRules } from './setting-rules.js';
import { SETTINGS, type Config, type SettingName } from './settings.js';

type Raw = RawSetting;

/**
 * Builds the configuration from, in rising precedence: defaults, a JSON config file (camelCase keys),
 * environment variables, and explicit overrides (CLI flags, tests). Every value is validated and an
 * error names the setting and what it allows; then the rules between settings (setting-rules.ts).
 */
export function loadConfig(opts: {
  env?: NodeJS.ProcessEnv;
  file?: string | undefined;
  overrides?: Partial<Record<SettingName, Raw>>;
} = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.CONFIG_FILE;
  const fromFile = file ? readConfigFile(file) : {};
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const spec: SettingSpec = SETTINGS[name];
    let raw: Raw = spec.default;
    let source = 'default';
    if (name in fromFile) {
      raw = fromFile[name] as Raw;
      source = `${file} key ${name}`;
    }
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      raw = fromEnv;
      source = spec.env;
    }
    const override = opts.overrides?.[name];
    if (override !== undefined) {
      raw = override;
      source = name;
    }
    out[name] = coerceSetting(source === 'default' ? spec.env : source, spec, raw);
  }
  const config = Object.freeze(out) as Config;
  checkSettingRules(config);
  return config;
}

function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('CONFIG_FILE', `cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('CONFIG_FILE', `${path} must hold a JSON object of settings`);
  }
  for (const key of Object.keys(parsed)) {
    if (!Object.hasOwn(SETTINGS, key)) throw new ConfigError('CONFIG_FILE', `${path}: unknown setting "${key}"; known: ${Object.keys(SETTINGS).join(', ')}`);
  }
  return parsed as Record<string, unknown>;
}

/** The settings as text for --help, one per line. */
export function describeSettings(): string {
  return (Object.keys(SETTINGS) as SettingName[])
    .map((name) => {
      const s: SettingSpec = SETTINGS[name];
      const def = s.default === null ? '(unset)' : Array.isArray(s.default) ? s.default.join(',') : String(s.default);
      return `  ${s.env.padEnd(28)} ${s.doc} [default: ${def}]`;
    })
    .join('\n');
}

/** The README's configuration table, generated so it cannot drift from the code. */
export function settingsMarkdownTable(): string {
  const rows = (Object.keys(SETTINGS) as SettingName[]).map((name) => {
    const s: SettingSpec = SETTINGS[name];
    const def = s.default === null ? '_unset_' : `\`${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}\``;
    const range = s.values ? `${s.kind === 'list' ? 'any of' : 'one of'} ${s.values.join(', ')}` : s.min !== undefined ? `${s.kind} ${s.min}..${s.max}` : s.kind;
    return `| \`${s.env}\` | \`${name}\` | ${def} | ${range} | ${s.doc} |`;
  });
  return ['| Variable | Config-file key | Default | Allowed | What it does |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}
