/**
 * Every setting the processor reads: each component's own table (declared beside it, validated by
 * one loader), composed here in the order the CLI's --help and the README's configuration table
 * list them (a test fails when the README is stale).
 */
import { HTTP_SETTINGS } from '../../adapters/http/settings.js';
import { CATALOG_SETTINGS } from '../../catalog/settings.js';
import { KAFKA_SETTINGS } from '../../adapters/kafka/settings.js';
import { INFERENCE_SETTINGS } from '../../inference/settings.js';
import { MODEL_SETTINGS } from '../../models/settings.js';
import { PIPELINE_SETTINGS } from '../../pipeline/settings.js';
import { PREPROCESS_SETTINGS } from '../../preprocess/settings.js';
import { REGISTRY_SETTINGS } from '../../adapters/registry/settings.js';
import { STATE_SETTINGS } from '../../state/settings.js';
import type { SettingTable, SettingValues } from '../../util/settings.js';

export type { SettingKind, SettingSpec } from '../../util/settings.js';

/** The app's own: logging. */
export const APP_SETTINGS = {
  logLevel: { env: 'LOG_LEVEL', kind: 'enum', default: 'info', values: ['debug', 'info', 'warn', 'error', 'silent'], doc: 'Least severe level logged (JSON lines on stdout).' },
} as const satisfies SettingTable;

export const SETTINGS = {
  ...KAFKA_SETTINGS,
  ...PIPELINE_SETTINGS,
  ...CATALOG_SETTINGS,
  ...INFERENCE_SETTINGS,
  ...MODEL_SETTINGS,
  ...PREPROCESS_SETTINGS,
  ...STATE_SETTINGS,
  ...HTTP_SETTINGS,
  ...REGISTRY_SETTINGS,
  ...APP_SETTINGS,
} as const satisfies SettingTable;

export type SettingName = keyof typeof SETTINGS;

/** The validated configuration: one typed field per setting. */
export type Config = SettingValues<typeof SETTINGS>;
