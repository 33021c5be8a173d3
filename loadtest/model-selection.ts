/**
 * The evals' `--models default|packs|<pack,...>`: which model packs replace the default encoders,
 * and the settings that make a core use them (MODEL_PACKS, with MODEL_DIR and MODEL_PACK_DIR from
 * the environment as the processor would read them).
 */
import type { SettingName } from '../src/app/config/settings.js';
import { MODEL_PACKS, type PackModality } from '../src/models/packs/model-packs.js';

export type SettingOverrides = Partial<Record<SettingName, string | number | boolean>>;

/**
 * The packs `--models` names: none for `default`, `packs` for every pack in `packs` (the caller's
 * meaning of "the packs"), else the comma-separated names, each a known pack (of `modality` when given).
 */
export function selectPacks(models: string, packs: readonly string[], modality?: PackModality): string[] {
  if (models === 'default') return [];
  const names = models === 'packs' ? [...packs] : models.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (names.length === 0) throw new Error(`--models must be default, packs or a comma-separated list of packs, got "${models}"`);
  for (const name of names) {
    const pack = MODEL_PACKS[name];
    if (!pack) throw new Error(`--models: unknown model pack "${name}"; packs: ${Object.keys(MODEL_PACKS).join(', ')}`);
    if (modality && pack.modality !== modality) throw new Error(`--models: ${name} encodes ${pack.modality}, and only ${modality} packs count here: ${packsOf(modality).join(', ')}`);
  }
  return names;
}

/** Every pack of one modality, in MODEL_PACKS' order. */
export function packsOf(modality: PackModality): string[] {
  return Object.values(MODEL_PACKS).filter((p) => p.modality === modality).map((p) => p.name);
}

/** Settings for a core that runs `packs` (none: the default encoders); model folders from the environment. */
export function modelOverrides(packs: readonly string[], env: NodeJS.ProcessEnv = process.env): SettingOverrides {
  return {
    ...(env.MODEL_DIR ? { modelDir: env.MODEL_DIR } : {}),
    ...(env.MODEL_PACK_DIR ? { modelPackDir: env.MODEL_PACK_DIR } : {}),
    ...(packs.length > 0 ? { modelPacks: packs.join(',') } : {}),
  };
}
