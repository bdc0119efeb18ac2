// The operator's layers, read from its imports: each folder of operator/src may import its own files
// and folders below it, never above or beside. A pure core at the bottom (what a key is, when to
// rotate, what to write) that knows nothing of the API server; the shell on top.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const src = path.resolve(import.meta.dirname, '../../operator/src');

/** Bottom first. Folders on one line share a rank and may not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ['api'],
  ['keys', 'schedule'],
  ['verify'],
  ['reconcile'],
  ['issuer'],
  ['observability'],
  ['kube'],
  ['controller'],
  ['cli'],
  // main.ts and keyrotor.ts: the two programs.
  ['.'],
];
const rankOf = new Map(LAYERS.flatMap((folders, rank) => folders.map((folder) => [folder, rank] as const)));

/** Every specifier of a static import or export, a type import included, and of a dynamic import(). */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1] ?? '');
  return found;
}

async function sources(): Promise<{ file: string; text: string }[]> {
  const entries = await readdir(src, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(src, path.join(entry.parentPath, entry.name)));
  return Promise.all(
    files.sort().map(async (file) => ({ file, text: await readFile(path.join(src, file), 'utf8') })),
  );
}

const folderOf = (file: string) => (file.includes(path.sep) ? (file.split(path.sep)[0] ?? '.') : '.');
const isTestFile = (file: string) => /\.(test|testing)\.ts$/.test(file);

/** The imports of `file` that point up or sideways, as "file -> target". */
export function violations(file: string, text: string): string[] {
  const from = folderOf(file);
  const fromRank = rankOf.get(from);
  if (fromRank === undefined) return [`${file}: folder ${from} has no layer in test/unit/layers.test.ts`];
  const found: string[] = [];
  for (const specifier of importsOf(text)) {
    if (!specifier.startsWith('.')) continue;
    const target = path.normalize(path.join(path.dirname(file), specifier));
    if (target.startsWith('..')) {
      found.push(`${file} -> ${specifier} (outside operator/src)`);
      continue;
    }
    const to = folderOf(target);
    if (to === from) continue;
    const toRank = rankOf.get(to);
    if (toRank === undefined || toRank >= fromRank) found.push(`${file} -> ${target}`);
  }
  return found;
}

describe('the operator layers (api -> keys/schedule -> verify -> reconcile -> issuer -> observability -> kube -> controller -> cli -> programs)', () => {
  it('finds static, type-only, re-exported and dynamic imports', () => {
    const text = [
      "import { a } from '../kube/a.ts';",
      "import type { B } from '../controller/b.ts';",
      "export { c } from '../cli/c.ts';",
      "import '../observability/side-effect.ts';",
      "const d = await import('../issuer/d.ts');",
      "import {\n  e,\n  f,\n} from '../keys/e.ts';",
    ].join('\n');
    expect(importsOf(text)).toEqual([
      '../kube/a.ts',
      '../controller/b.ts',
      '../cli/c.ts',
      '../keys/e.ts',
      '../observability/side-effect.ts',
      '../issuer/d.ts',
    ]);
    expect(violations('reconcile/x.ts', text)).toEqual([
      'reconcile/x.ts -> kube/a.ts',
      'reconcile/x.ts -> controller/b.ts',
      'reconcile/x.ts -> cli/c.ts',
      'reconcile/x.ts -> observability/side-effect.ts',
      'reconcile/x.ts -> issuer/d.ts',
    ]);
    expect(violations('keys/x.ts', "import { s } from '../schedule/s.ts';")).toEqual([
      'keys/x.ts -> schedule/s.ts',
    ]);
  });

  it('has every import of every operator source file point down', async () => {
    const found = (await sources())
      .filter(({ file }) => !isTestFile(file))
      .flatMap(({ file, text }) => violations(file, text));
    expect(found).toEqual([]);
  });

  it('keeps test fixtures (*.testing.ts) out of the operator: only tests import them', async () => {
    const found = (await sources())
      .filter(({ file }) => !isTestFile(file))
      .flatMap(({ file, text }) =>
        importsOf(text)
          .filter((specifier) => specifier.endsWith('.testing.ts'))
          .map((specifier) => `${file} -> ${specifier}`),
      );
    expect(found).toEqual([]);
  });

  it('keeps keyrotor/verify free of dependencies: node: builtins and keys/ only', async () => {
    const found = (await sources())
      .filter(({ file }) => ['verify', 'keys'].includes(folderOf(file)) && !isTestFile(file))
      .flatMap(({ file, text }) =>
        importsOf(text)
          .filter((specifier) => !specifier.startsWith('node:') && !specifier.startsWith('.'))
          .map((specifier) => `${file} -> ${specifier}`),
      );
    expect(found).toEqual([]);
  });
});
