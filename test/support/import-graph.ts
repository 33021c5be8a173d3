/**
 * The import graph of src/, by folder: what the layout test checks and what the README's layout
 * section describes. Run it to print the graph: `npx tsx test/support/import-graph.ts [ROOT]`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Layers from the bottom up. A file may import from its own folder and from lower layers only;
 * folders on one line are one layer and must not import each other.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['domain'],
  ['util'],
  ['serde', 'preprocess'],
  ['inference'],
  ['models', 'state'],
  ['catalog'],
  ['pipeline'],
  ['training'],
  ['metrics'],
  ['adapters/kafka', 'adapters/http', 'adapters/memory', 'adapters/registry'],
  ['devtools'],
  ['app'],
];

export interface ImportEdge {
  readonly from: string;
  readonly to: string;
  /** Module specifier as written (a package name, or a path relative to `from`). */
  readonly spec: string;
}

// `import('pkg' as string)`: a lazily loaded optional package, which the type checker must not resolve.
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"](?:\s+as\s+string)?\s*\)/g;

export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

/** Every import of every .ts file under root/src, paths relative to root/src. */
export function importsOf(root: string): ImportEdge[] {
  const src = join(root, 'src');
  const edges: ImportEdge[] = [];
  for (const file of sourceFiles(src)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      const from = relative(src, file);
      const to = spec.startsWith('.') ? relative(src, resolve(dirname(file), spec)).replace(/\.js$/, '.ts') : spec;
      edges.push({ from, to, spec });
    }
  }
  return edges;
}

/** The folder a file of src/ belongs to for layering: adapters/<name>, or its first folder. */
export function folderOf(path: string): string {
  const parts = path.split('/');
  if (parts.length === 1) return '.';
  return parts[0] === 'adapters' && parts.length > 2 ? `adapters/${parts[1]}` : parts[0]!;
}

export function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

/** Imports between folders of src/ that point up, or sideways within one layer. */
export function upwardImports(edges: readonly ImportEdge[]): ImportEdge[] {
  return edges.filter((e) => {
    if (!e.spec.startsWith('.')) return false;
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    return a !== b && layerOf(b) >= layerOf(a);
  });
}

/** Folder -> folder arrows (relative imports across folders), with how many imports each. */
export function folderArrows(edges: readonly ImportEdge[]): Map<string, number> {
  const arrows = new Map<string, number>();
  for (const e of edges) {
    if (!e.spec.startsWith('.')) continue;
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    if (a !== b) arrows.set(`${a} -> ${b}`, (arrows.get(`${a} -> ${b}`) ?? 0) + 1);
  }
  return arrows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '../..'));
  const edges = importsOf(root);
  const arrows = folderArrows(edges);
  const folders = new Set(edges.map((e) => folderOf(e.from)));
  const up = upwardImports(edges);
  for (const [a, n] of [...arrows].sort()) console.log(`${a}  (${n})`);
  for (const e of up) console.log(`UP: ${e.from} -> ${e.to}`);
  console.log(JSON.stringify({ folders: folders.size, arrows: arrows.size, upward: up.length, kafkajsImporters: [...new Set(edges.filter((e) => e.spec === 'kafkajs').map((e) => e.from))] }));
}
