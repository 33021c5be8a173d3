import { readFileSync } from 'node:fs';
import { ConfigError } from '../../domain/errors.js';
import { SETTINGS, type Config, type SettingName, type SettingSpec } from './settings.js';

type Raw = string | number | boolean | readonly string[] | null;

/**
 * Builds the configuration from, in rising precedence: defaults, a JSON config file (camelCase keys),
 * environment variables, and explicit overrides (CLI flags, tests). Every value is validated and an
 * error names the setting and what it allows.
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
    out[name] = coerce(source === 'default' ? spec.env : source, spec, raw);
  }
  return Object.freeze(out) as Config;
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

function coerce(where: string, spec: SettingSpec, raw: Raw): unknown {
  if (raw === null) {
    // Only a setting whose default is unset may be null; `"topK": null` in a file is an error.
    if (spec.default === null) return null;
    throw new ConfigError(where, `must not be null (${spec.kind})`);
  }
  switch (spec.kind) {
    case 'string': {
      const s = String(raw).trim();
      if (!s) throw new ConfigError(where, 'must not be empty');
      return s;
    }
    case 'int':
    case 'number': {
      const text = String(raw).trim();
      // Number('') is 0: a blank value must not silently become 0.
      const n = typeof raw === 'number' ? raw : text === '' ? Number.NaN : Number(text);
      if (!Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n))) {
        throw new ConfigError(where, `must be ${spec.kind === 'int' ? 'an integer' : 'a number'}, got "${String(raw)}"`);
      }
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(where, `must be between ${spec.min} and ${spec.max}, got ${n}`);
      }
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off'].includes(s)) return false;
      throw new ConfigError(where, `must be true or false, got "${String(raw)}"`);
    }
    case 'list': {
      const items = (Array.isArray(raw) ? raw.map(String) : String(raw).split(',')).map((s) => s.trim()).filter(Boolean);
      if (items.length === 0) throw new ConfigError(where, 'must list at least one value');
      const unknown = spec.values ? items.filter((i) => !spec.values!.includes(i)) : [];
      if (unknown.length > 0) throw new ConfigError(where, `has unknown value(s) ${unknown.join(', ')}; allowed: ${spec.values!.join(', ')}`);
      return Object.freeze(items);
    }
    case 'enum': {
      const s = String(raw).trim();
      if (!spec.values?.includes(s)) throw new ConfigError(where, `must be one of ${spec.values?.join(', ')}, got "${s}"`);
      return s;
    }
  }
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
