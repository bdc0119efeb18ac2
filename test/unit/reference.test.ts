import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

import { load } from 'js-yaml';

import { describe, expect, it } from 'vitest';

import { REFERENCE_PATH, renderReference } from '../../scripts/reference.ts';

interface Schema {
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
}

interface Crd {
  spec: { versions: { schema: { openAPIV3Schema: Schema } }[] };
}

const repoRoot = path.resolve(import.meta.dirname, '../..');

describe('docs/reference.md', () => {
  it('is what the CRD renders today (run npm run docs:reference after changing the CRD)', async () => {
    expect(await readFile(REFERENCE_PATH, 'utf8')).toBe(await renderReference());
  });

  it('documents every field of every CRD schema, spec and status, at every depth', async () => {
    const reference = await renderReference();
    const fields: string[] = [];
    // Walked here, not by the renderer: every property, through arrays ([]) and maps (values' own fields).
    const walk = (schema: Schema, prefix: string) => {
      for (const [name, field] of Object.entries(schema.properties ?? {})) {
        fields.push(`${prefix}${name}`);
        walkInner(field, `${prefix}${name}`);
      }
    };
    const walkInner = (field: Schema, at: string) => {
      if (field.items) walkInner(field.items, `${at}[]`);
      else if (typeof field.additionalProperties === 'object')
        walkInner(field.additionalProperties, `${at}{}`);
      else walk(field, `${at}.`);
    };
    // Every CRD in crds/, so a new one cannot go undocumented either.
    const files = (await readdir(path.join(repoRoot, 'crds'))).filter((file) => file.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const crd = load(await readFile(path.join(repoRoot, 'crds', file), 'utf8')) as Crd;
      expect(crd.spec.versions).toHaveLength(1);
      const root = crd.spec.versions[0]?.schema.openAPIV3Schema ?? {};
      walk({ properties: { spec: root.properties?.spec ?? {}, status: root.properties?.status ?? {} } }, '');
    }
    expect(fields).toContain('spec.rotation.gracePeriod');
    expect(fields).toContain('status.history[].reason');
    const missing = fields.filter((field) => !reference.includes(`| \`${field}\` |`));
    expect(missing).toEqual([]);
  });
});
