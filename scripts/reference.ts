// Renders docs/reference.md, the ApiKey and ApiKeyIssuer reference, from the CRDs' schemas: the two cannot drift, because
// test/unit/reference.test.ts fails when the file differs from what this renders.
// npm run docs:reference rewrites it.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { load } from 'js-yaml';

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  enum?: unknown[];
  default?: unknown;
  required?: string[];
  minItems?: number;
  maxItems?: number;
  maxLength?: number;
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string }[];
}

const repoRoot = path.resolve(import.meta.dirname, '..');
export const REFERENCE_PATH = path.join(repoRoot, 'docs/reference.md');

function typeOf(schema: Schema): string {
  if (schema.type === 'array') return `[]${schema.items ? typeOf(schema.items) : 'any'}`;
  if (schema.type === 'object' && typeof schema.additionalProperties === 'object') {
    return `map[string]${typeOf(schema.additionalProperties)}`;
  }
  return schema.type ?? 'any';
}

function rows(schema: Schema, prefix: string, out: string[]): void {
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const fieldPath = `${prefix}${name}`;
    const notes: string[] = [];
    if (schema.required?.includes(name)) notes.push('required');
    if (field.default !== undefined) notes.push(`default \`${JSON.stringify(field.default)}\``);
    if (field.enum) notes.push(`one of ${field.enum.map((value) => `\`${String(value)}\``).join(', ')}`);
    const description = (field.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
    out.push(
      `| \`${fieldPath}\` | ${typeOf(field)} | ${description}${notes.length ? ` (${notes.join('; ')})` : ''} |`,
    );
    const inner = field.type === 'array' ? field.items : field;
    if (inner?.properties) rows(inner, `${fieldPath}${field.type === 'array' ? '[]' : ''}.`, out);
  }
}

interface Crd {
  spec: {
    names: { kind: string; shortNames?: string[] };
    versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
  };
}

const CRD_FILES = [
  'crds/keyrotor.dev_apikeys.yaml',
  'crds/keyrotor.dev_apikeyissuers.yaml',
  'crds/keyrotor.dev_apikeyreaders.yaml',
];

async function renderKind(file: string): Promise<string[]> {
  const crd = load(await readFile(path.join(repoRoot, file), 'utf8')) as Crd;
  const version = crd.spec.versions[0];
  if (!version) throw new Error(`${file} has no version`);
  const { kind, shortNames = [] } = crd.spec.names;
  const root = version.schema.openAPIV3Schema;
  const short = shortNames.length > 0 ? `; short name \`${shortNames.join('`, `')}\`` : '';
  const out = [
    `## ${kind}`,
    '',
    `\`apiVersion: keyrotor.dev/${version.name}\`, \`kind: ${kind}\` (namespaced${short}). ${root.description ?? ''}`,
    '',
    '| field | type | description |',
    '| --- | --- | --- |',
  ];
  rows({ properties: { spec: root.properties?.spec ?? {}, status: root.properties?.status ?? {} } }, '', out);
  const rules = [
    ...(root['x-kubernetes-validations'] ?? []),
    ...(root.properties?.spec?.['x-kubernetes-validations'] ?? []),
  ];
  if (rules.length > 0) {
    out.push('', `### ${kind}: rules the API server enforces across fields`, '');
    for (const rule of rules) out.push(`- ${rule.message ?? rule.messageExpression ?? rule.rule}`);
  }
  return out;
}

export async function renderReference(): Promise<string> {
  const out = [
    '# API reference',
    '',
    `<!-- Generated from ${CRD_FILES.join(' and ')} by scripts/reference.ts (npm run docs:reference). Do not edit. -->`,
    '',
  ];
  for (const file of CRD_FILES) out.push(...(await renderKind(file)), '');
  return `${out.join('\n').trimEnd()}\n`;
}

if (process.argv[1] === import.meta.filename) {
  await writeFile(REFERENCE_PATH, await renderReference());
  process.stderr.write(`wrote ${REFERENCE_PATH}\n`);
}
