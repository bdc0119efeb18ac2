/**
 * The templates of spec.secretTemplate.data: text with `{{ .field }}` substitutions over a fixed set of
 * fields, written as Go templates write them so the syntax is familiar, but closed: no pipelines,
 * functions, conditionals or variables. A template either parses into literal text and fields, or is
 * refused with the line and column of the first problem; a parsed template always renders. Pure.
 */

/** The fields a template may use, in the order docs/consuming-keys.md lists them. */
export const TEMPLATE_FIELDS = [
  'key',
  'keyId',
  'scopes',
  'issuedAt',
  'expiresAt',
  'previousKey',
  'previousKeyId',
  'previousExpiresAt',
  'environment',
  'name',
  'namespace',
] as const;

export type TemplateField = (typeof TEMPLATE_FIELDS)[number];

/** What each field renders as: strings keyrotor computed, never anything the tenant wrote but names. */
export type TemplateValues = Readonly<Record<TemplateField, string>>;

export type TemplatePart = { readonly text: string } | { readonly field: TemplateField };

/** A template as literal text and fields, ready to render. */
export type ParsedTemplate = readonly TemplatePart[];

export type TemplateParse =
  { readonly ok: true; readonly template: ParsedTemplate } | { readonly ok: false; readonly problem: string };

const OPEN = '{{';
const CLOSE = '}}';
/** `{{"{{"}}`, as in Go: the only way to write a literal `{{`. */
const LITERAL_OPEN = '"{{"';
const FIELD = /^\.([A-Za-z][A-Za-z0-9_]*)$/;
const WORD = /^[A-Za-z_][A-Za-z0-9_]*/;
/** Identifiers longer than this are not repeated in a message: it stays short whatever was written. */
const MAX_QUOTED_CHARS = 32;
const FIELD_LIST = TEMPLATE_FIELDS.map((field) => `.${field}`).join(', ');

const isField = (name: string): name is TemplateField =>
  (TEMPLATE_FIELDS as readonly string[]).includes(name);

/** "line L, column C" of `index` (both from 1), so a person can find the spot in a multi-line value. */
function position(text: string, index: number): string {
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  const column = index - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/** Why an action other than `{{ .field }}` is refused. Quotes only short identifiers, never other text. */
function actionProblem(action: string): string {
  if (action === '') return 'an empty {{ }}';
  if (action.startsWith('-') || action.endsWith('-')) return 'trim markers ({{- and -}}) are not supported';
  if (action.startsWith('/*')) return 'comments are not supported';
  const field = FIELD.exec(action)?.[1];
  if (field !== undefined) {
    const quoted = field.length <= MAX_QUOTED_CHARS ? ` ".${field}"` : '';
    return `unknown field${quoted}: the fields are ${FIELD_LIST}`;
  }
  if (action.includes(OPEN)) return '{{ inside {{ }}';
  if (action.includes('|')) return 'pipelines are not supported';
  const word = WORD.exec(action)?.[0];
  if (word !== undefined && word.length <= MAX_QUOTED_CHARS)
    return `"${word}" is not supported: only {{ .field }} is, over the fields ${FIELD_LIST}`;
  return `only {{ .field }} is supported, over the fields ${FIELD_LIST}`;
}

export function parseTemplate(text: string): TemplateParse {
  const parts: TemplatePart[] = [];
  let literal = '';
  let at = 0;
  for (;;) {
    const open = text.indexOf(OPEN, at);
    if (open < 0) break;
    literal += text.slice(at, open);
    const close = text.indexOf(CLOSE, open + OPEN.length);
    if (close < 0) return { ok: false, problem: `${position(text, open)}: {{ is never closed with }}` };
    const action = text.slice(open + OPEN.length, close).trim();
    const field = FIELD.exec(action)?.[1];
    if (action === LITERAL_OPEN) {
      literal += OPEN;
    } else if (field !== undefined && isField(field)) {
      if (literal !== '') parts.push({ text: literal });
      literal = '';
      parts.push({ field });
    } else {
      return { ok: false, problem: `${position(text, open)}: ${actionProblem(action)}` };
    }
    at = close + CLOSE.length;
  }
  literal += text.slice(at);
  if (literal !== '') parts.push({ text: literal });
  return { ok: true, template: parts };
}

export function renderTemplate(template: ParsedTemplate, values: TemplateValues): string {
  return template.map((part) => ('field' in part ? values[part.field] : part.text)).join('');
}

/** The most UTF-8 bytes `template` can render to when no field is longer than `bounds` says. */
export function renderedBytesBound(
  template: ParsedTemplate,
  bounds: Readonly<Record<TemplateField, number>>,
): number {
  return template.reduce(
    (total, part) => total + ('field' in part ? bounds[part.field] : Buffer.byteLength(part.text, 'utf8')),
    0,
  );
}
