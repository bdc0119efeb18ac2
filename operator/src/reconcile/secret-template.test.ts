// The closed template language of spec.secretTemplate.data: what renders to what, what is refused and
// how the refusal reads (a position and the problem, never text that a template would render).
import { describe, expect, it } from 'vitest';

import {
  TEMPLATE_FIELDS,
  parseTemplate,
  renderTemplate,
  renderedBytesBound,
  type TemplateValues,
} from './secret-template.ts';

const KEY = 'kr_live_0000000000000000000000000000000000000000001abcdef';
const OLD = 'kr_live_0000000000000000000000000000000000000000000abcdef';
const values: TemplateValues = {
  key: KEY,
  keyId: '0123456789abcdef',
  scopes: 'prices:read orders:write',
  issuedAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2026-01-31T00:00:00.000Z',
  previousKey: OLD,
  previousKeyId: 'fedcba9876543210',
  previousExpiresAt: '2026-01-01T00:10:00.000Z',
  environment: 'production',
  name: 'bot',
  namespace: 'trading',
};

function render(text: string): string {
  const parsed = parseTemplate(text);
  if (!parsed.ok) throw new Error(parsed.problem);
  return renderTemplate(parsed.template, values);
}

function problem(text: string): string {
  const parsed = parseTemplate(text);
  return parsed.ok ? '(parsed)' : parsed.problem;
}

describe('renderTemplate', () => {
  it.each([
    ['{{ .key }}', KEY],
    ['{{.key}}', KEY],
    ['{{\t.key  }}', KEY],
    ['Bearer {{ .key }}', `Bearer ${KEY}`],
    ['api:\n  key: {{ .key }}\n  id: {{ .keyId }}\n', `api:\n  key: ${KEY}\n  id: 0123456789abcdef\n`],
    ['{{ .key }}{{ .key }}', KEY + KEY],
    ['{{ .scopes }}', 'prices:read orders:write'],
    ['{{ .issuedAt }}/{{ .expiresAt }}', '2026-01-01T00:00:00.000Z/2026-01-31T00:00:00.000Z'],
    [
      '{{ .previousKey }},{{ .previousKeyId }},{{ .previousExpiresAt }}',
      `${OLD},fedcba9876543210,2026-01-01T00:10:00.000Z`,
    ],
    ['{{ .namespace }}/{{ .name }} in {{ .environment }}', 'trading/bot in production'],
    ['no fields at all', 'no fields at all'],
    ['', ''],
    ['a lone }} is text', 'a lone }} is text'],
    ['{ .key }', '{ .key }'],
    ['{{"{{"}} .key }}', '{{ .key }}'],
    ['{{ "{{" }}', '{{'],
    ['ünïcødé {{ .name }} ✓', 'ünïcødé bot ✓'],
  ])('renders %j', (text, expected) => {
    expect(render(text)).toBe(expected);
  });

  it('renders every field it lists', () => {
    for (const field of TEMPLATE_FIELDS) expect(render(`{{ .${field} }}`)).toBe(values[field]);
  });

  it('renders empty previous fields as empty text', () => {
    const parsed = parseTemplate('[{{ .previousKey }}]');
    expect(parsed.ok && renderTemplate(parsed.template, { ...values, previousKey: '' })).toBe('[]');
  });
});

describe('parseTemplate refuses', () => {
  it.each([
    ['{{ .token }}', 'line 1, column 1: unknown field ".token": the fields are .key, .keyId,'],
    ['{{ .Key }}', 'unknown field ".Key"'],
    ['{{ .key.id }}', 'line 1, column 1: only {{ .field }} is supported'],
    ['api:\n  key: {{ .key', 'line 2, column 8: {{ is never closed with }}'],
    ['a\nb\nc {{ .key }} {{', 'line 3, column 14: {{ is never closed with }}'],
    ['{{ .key | upper }}', 'pipelines are not supported'],
    ['{{ upper .key }}', '"upper" is not supported: only {{ .field }} is'],
    ['{{ printf "%s" .key }}', '"printf" is not supported'],
    ['{{ if .previousKey }}x{{ end }}', '"if" is not supported'],
    ['{{ range .scopes }}', '"range" is not supported'],
    ['{{ $x := .key }}', 'only {{ .field }} is supported'],
    ['{{ . }}', 'only {{ .field }} is supported'],
    ['{{ key }}', '"key" is not supported'],
    ['{{}}', 'an empty {{ }}'],
    ['{{   }}', 'an empty {{ }}'],
    ['{{- .key }}', 'trim markers ({{- and -}}) are not supported'],
    ['{{ .key -}}', 'trim markers'],
    ['{{/* a comment */}}', 'comments are not supported'],
    ['{{ .key {{ .keyId }}', '{{ inside {{ }}'],
    ['ok {{ .key }} then {{ .nope }}', 'line 1, column 20: unknown field ".nope"'],
  ])('%j', (text, message) => {
    expect(problem(text)).toContain(message);
  });

  it('does not repeat long identifiers or any other text of the template', () => {
    const long = `{{ .${'a'.repeat(40)} }}`;
    expect(problem(long)).toContain('unknown field:');
    expect(problem(long)).not.toContain('a'.repeat(40));
    expect(problem('{{ "s3cr3t-literal" }}')).not.toContain('s3cr3t');
    expect(problem(`{{ ${'w'.repeat(40)} }}`)).not.toContain('w'.repeat(40));
  });
});

describe('renderedBytesBound', () => {
  const bounds = Object.fromEntries(TEMPLATE_FIELDS.map((field) => [field, 100])) as Record<
    (typeof TEMPLATE_FIELDS)[number],
    number
  >;
  it.each([
    ['', 0],
    ['abc', 3],
    ['✓', 3],
    ['{{ .key }}', 100],
    ['key={{ .key }}\nold={{ .previousKey }}', 4 + 100 + 5 + 100],
  ])('%j renders to at most %i bytes', (text, bytes) => {
    const parsed = parseTemplate(text);
    expect(parsed.ok && renderedBytesBound(parsed.template, bounds)).toBe(bytes);
  });
});
