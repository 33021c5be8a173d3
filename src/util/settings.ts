/**
 * How a component declares the settings it reads: a table of specs (environment variable, kind,
 * default, bounds, doc), from which its typed values follow. The app's loader (src/app/config)
 * composes every component's table, and the CLI's --help and the README's table come from them.
 */
import { ConfigError } from '../domain/errors.js';

export type SettingKind = 'string' | 'int' | 'number' | 'boolean' | 'list' | 'enum';

export interface SettingSpec {
  /** Environment variable; the config file uses the camelCase key. */
  readonly env: string;
  readonly kind: SettingKind;
  readonly default: string | number | boolean | readonly string[] | null;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
}

export type SettingTable = Readonly<Record<string, SettingSpec>>;

/** A raw value as a config file, the environment or an override gives it. */
export type RawSetting = string | number | boolean | readonly string[] | null;

type ValueOf<S extends SettingSpec> = S['kind'] extends 'int' | 'number'
  ? number
  : S['kind'] extends 'boolean'
    ? boolean
    : S['kind'] extends 'list'
      ? S['default'] extends null ? readonly string[] | null : readonly string[]
      : S['kind'] extends 'enum'
        ? S extends { values: readonly (infer V)[] } ? V : string
        : S['default'] extends null ? string | null : string;

/** The validated values of a table: one typed field per setting. */
export type SettingValues<T extends SettingTable> = { readonly [K in keyof T]: ValueOf<T[K]> };

/** The values of `table`'s settings out of a larger set (what a component is handed). */
export function sliceOf<T extends SettingTable>(values: SettingValues<T>, table: T): SettingValues<T> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(table)) out[key] = (values as Record<string, unknown>)[key];
  return Object.freeze(out) as SettingValues<T>;
}

/** Validates one raw value against its spec; `where` names it in the error (the variable, or the file and key). */
export function coerceSetting(where: string, spec: SettingSpec, raw: RawSetting): unknown {
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
