/** The evals' `--models` option (loadtest/model-selection.ts): which packs it names, and its errors. */
import { describe, expect, it } from 'vitest';
import { modelOverrides, packsOf, selectPacks } from '../../loadtest/model-selection.js';

describe('--models of the evals', () => {
  it('default names no pack; packs names the caller\'s set; a list names its packs in order', () => {
    expect(selectPacks('default', ['use-multilingual'])).toEqual([]);
    expect(selectPacks('packs', ['efficientnet-lite0', 'use-multilingual'])).toEqual(['efficientnet-lite0', 'use-multilingual']);
    expect(selectPacks(' minilm-en , use-multilingual', [])).toEqual(['minilm-en', 'use-multilingual']);
    expect(packsOf('text')).toEqual(['use-multilingual', 'minilm-en']);
    expect(selectPacks('packs', packsOf('text'), 'text')).toEqual(['use-multilingual', 'minilm-en']);
  });

  it('an unknown pack, an empty list, or a pack of another modality is a clear error', () => {
    expect(() => selectPacks('use-multilingual,minilm', [])).toThrow('unknown model pack "minilm"; packs: efficientnet-lite0, use-multilingual, minilm-en');
    expect(() => selectPacks(',', [])).toThrow('--models must be default, packs or a comma-separated list of packs');
    expect(() => selectPacks('efficientnet-lite0', [], 'text')).toThrow('efficientnet-lite0 encodes image, and only text packs count here: use-multilingual, minilm-en');
  });

  it('the settings: MODEL_PACKS only when packs are named, model folders from the environment', () => {
    expect(modelOverrides([], {})).toEqual({});
    expect(modelOverrides(['minilm-en'], {})).toEqual({ modelPacks: 'minilm-en' }); // one pack per yardstick row
    expect(modelOverrides(['use-multilingual', 'minilm-en'], { MODEL_DIR: '/m', MODEL_PACK_DIR: '/p' })).toEqual({ modelDir: '/m', modelPackDir: '/p', modelPacks: 'use-multilingual,minilm-en' });
  });
});
