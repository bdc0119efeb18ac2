import { createHash } from 'node:crypto';

import {
  ANNOTATION_RENDERED_DATA,
  DATA_API_KEY,
  DATA_EXPIRES_AT,
  DATA_KEY_ID,
  DATA_SCOPES,
} from '../api/names.ts';
import { formatKey, MAX_KEY_BITS } from '../keys/format.ts';
import {
  parseTemplate,
  renderedBytesBound,
  renderTemplate,
  type ParsedTemplate,
  type TemplateField,
  type TemplateValues,
} from './secret-template.ts';

/**
 * spec.secretTemplate.data: data keys of the Secret rendered from templates over the key
 * (docs/consuming-keys.md#shaping-the-secret). The checks the CRD makes at apply time are repeated
 * here, with those CEL cannot afford (the templates themselves, the rendered size), so a bad template is
 * InvalidSpec before anything is rendered: a Secret is never written half-rendered.
 */

/** As many data templates as the CRD allows (maxProperties). */
export const MAX_DATA_TEMPLATES = 16;
/** The longest template, in characters, as the CRD allows (maxLength). */
export const MAX_TEMPLATE_CHARS = 4096;
/**
 * The most the rendered data parts may hold together (UTF-8 bytes, before base64). A Secret's data may
 * hold 1 MiB, but the whole object must also fit etcd's request limit: 512 KiB is 683 KiB in base64,
 * which leaves room for keyrotor's own parts and up to 256 KiB of template annotations under 1 MiB.
 */
export const MAX_RENDERED_BYTES = 512 * 1024;
/** Kubernetes' rule for Secret data keys (IsConfigMapKey), and its length limit. */
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const MAX_DATA_KEY_CHARS = 253;
/** The data keys keyrotor writes itself, and the prefix of those it writes during a grace period. */
const OWN_DATA_KEYS: readonly string[] = [DATA_API_KEY, DATA_KEY_ID, DATA_SCOPES, DATA_EXPIRES_AT];
const OWN_DATA_PREFIX = 'previous-';
/** Invalid data keys are quoted only up to this many characters. */
const MAX_QUOTED_KEY_CHARS = 64;

export interface DataTemplate {
  /** The data key the template renders into. */
  readonly name: string;
  readonly template: ParsedTemplate;
}

/** The longest key any spec can make: the longest prefix and environment tag, the most bits. */
const LONGEST_KEY_CHARS = formatKey(
  { prefix: 'a'.repeat(12), environment: 'production', bits: MAX_KEY_BITS },
  new Uint8Array(MAX_KEY_BITS / 8),
).length;
const TIME_CHARS = '2026-01-01T00:00:00.000Z'.length;

/** What the rendered text is checked against: the longest each field can be for this spec. */
export interface FieldBounds {
  readonly scopes: readonly string[];
  readonly environment: string;
  readonly name: string;
  readonly namespace: string;
}

function boundsOf(spec: FieldBounds): Record<TemplateField, number> {
  return {
    key: LONGEST_KEY_CHARS,
    keyId: 16,
    scopes: Buffer.byteLength(spec.scopes.join(' '), 'utf8'),
    issuedAt: TIME_CHARS,
    expiresAt: TIME_CHARS,
    previousKey: LONGEST_KEY_CHARS,
    previousKeyId: 16,
    previousExpiresAt: TIME_CHARS,
    environment: spec.environment.length,
    name: spec.name.length,
    namespace: spec.namespace.length,
  };
}

const quoted = (name: string) =>
  name.length <= MAX_QUOTED_KEY_CHARS ? `"${name}"` : `"${name.slice(0, MAX_QUOTED_KEY_CHARS)}…"`;

/**
 * A data value as a string, only if `data` holds it itself: a name from tenant input ("toString",
 * "constructor") must never reach Object.prototype.
 */
export function ownPart(
  data: Readonly<Record<string, string>> | undefined,
  name: string,
): string | undefined {
  if (data === undefined || !Object.hasOwn(data, name)) return undefined;
  const value: unknown = data[name];
  return typeof value === 'string' ? value : undefined;
}

/** Why `name` cannot be a rendered data key, if it cannot. */
function dataKeyProblem(name: string): string | undefined {
  if (name.length > MAX_DATA_KEY_CHARS) return `is longer than ${MAX_DATA_KEY_CHARS} characters`;
  // An object key that sets a prototype when assigned: the part would silently not be written.
  if (name === '__proto__') return 'is reserved: __proto__ cannot be a data key here';
  if (!DATA_KEY.test(name) || name === '.' || name.startsWith('..'))
    return "is not a valid Secret data key (letters, digits, '-', '_' and '.'; not . or starting with ..)";
  if (OWN_DATA_KEYS.includes(name) || name.startsWith(OWN_DATA_PREFIX))
    return `is one of keyrotor's own data keys (${OWN_DATA_KEYS.join(', ')}, ${OWN_DATA_PREFIX}*): the issuer and verifier read those`;
  return undefined;
}

/**
 * The data templates of a spec, parsed, sorted by data key; each problem is pushed onto `problems`,
 * naming the data key and the position, never any text a template would render.
 */
export function checkDataTemplates(
  data: Readonly<Record<string, string>> | undefined,
  bounds: FieldBounds,
  problems: string[],
): DataTemplate[] {
  const entries = Object.entries(data ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length > MAX_DATA_TEMPLATES)
    problems.push(`secretTemplate.data has ${entries.length} entries, more than ${MAX_DATA_TEMPLATES}`);
  const templates: DataTemplate[] = [];
  for (const [name, text] of entries) {
    const where = `secretTemplate.data[${quoted(name)}]`;
    const keyProblem = dataKeyProblem(name);
    if (keyProblem !== undefined) {
      problems.push(`${where} ${keyProblem}`);
      continue;
    }
    if (typeof text !== 'string' || text.length > MAX_TEMPLATE_CHARS) {
      problems.push(`${where} is longer than ${MAX_TEMPLATE_CHARS} characters`);
      continue;
    }
    const parsed = parseTemplate(text);
    if (parsed.ok) templates.push({ name, template: parsed.template });
    else problems.push(`${where}: ${parsed.problem}`);
  }
  const fieldBounds = boundsOf(bounds);
  const most = templates.reduce(
    (total, { name, template }) => total + name.length + renderedBytesBound(template, fieldBounds),
    0,
  );
  if (most > MAX_RENDERED_BYTES) {
    problems.push(
      `secretTemplate.data could render to ${Math.ceil(most / 1024)} KiB, more than ${MAX_RENDERED_BYTES / 1024} KiB: a Secret must stay under 1 MiB`,
    );
  }
  return templates;
}

const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** The rendered data parts, base64 as a Secret holds them, by data key. */
export function renderData(
  templates: readonly DataTemplate[],
  values: TemplateValues,
): Record<string, string> {
  return Object.fromEntries(
    templates.map(({ name, template }) => [name, encode(renderTemplate(template, values))]),
  );
}

/**
 * How keyrotor's Secret cache holds a rendered part: its SHA-256 behind a mark no base64 value can
 * start with. keyrotor never reads a rendered part, only checks it, so the cache need not hold key
 * material or a tenant's megabyte, only this.
 */
export const DIGEST_MARK = '#sha256:';

/** The SHA-256 (hex) of a data value as served (base64), whether it is the value or the cache's digest. */
export function partDigest(value: string): string {
  return value.startsWith(DIGEST_MARK)
    ? value.slice(DIGEST_MARK.length)
    : createHash('sha256').update(value).digest('hex');
}

/** What the seal covers of the rendered parts: their names and values (a missing one as null). */
export function renderedDigest(names: readonly string[], data: Readonly<Record<string, string>>): string {
  const parts = names.map((name) => {
    const value = ownPart(data, name);
    return [name, value === undefined ? null : partDigest(value)];
  });
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

const NAME_LIST = /^[-._a-zA-Z0-9]+(,[-._a-zA-Z0-9]+)*$/;

/** The data keys the rendered-data annotation names, or undefined when it is missing or malformed. */
export function renderedNamesOf(
  annotations: Readonly<Record<string, string>> | undefined,
): string[] | undefined {
  const list = annotations?.[ANNOTATION_RENDERED_DATA];
  if (list === undefined || !NAME_LIST.test(list)) return undefined;
  const names = list.split(',');
  return names.length <= MAX_DATA_TEMPLATES ? names : undefined;
}

/** The values of the template fields: the previous ones are empty outside a grace period. */
export function templateValuesOf(
  apiKey: { readonly metadata: { readonly name: string; readonly namespace: string } },
  spec: { readonly scopes: readonly string[]; readonly environment: string },
  current: {
    readonly key: string;
    readonly keyId: string;
    readonly issuedAt: Date;
    readonly expiresAt: Date;
  },
  previous: { readonly key: string; readonly keyId: string; readonly expiresAt: Date } | undefined,
): TemplateValues {
  return {
    key: current.key,
    keyId: current.keyId,
    scopes: spec.scopes.join(' '),
    issuedAt: current.issuedAt.toISOString(),
    expiresAt: current.expiresAt.toISOString(),
    previousKey: previous?.key ?? '',
    previousKeyId: previous?.keyId ?? '',
    previousExpiresAt: previous?.expiresAt.toISOString() ?? '',
    environment: spec.environment,
    name: apiKey.metadata.name,
    namespace: apiKey.metadata.namespace,
  };
}

/**
 * The rendered parts `recorded` names that `desired` no longer has and that `observed` still holds, as
 * strip paths ("data.<key>"): after a template change, and all of them after a revocation. Server-side
 * apply would keep those another manager has touched, so they are removed explicitly.
 */
export function staleRenderedParts(
  recorded: readonly string[],
  observed: Readonly<Record<string, string>> | undefined,
  desired: Readonly<Record<string, string>>,
): string[] {
  return recorded
    .filter(
      (name) =>
        dataKeyProblem(name) === undefined &&
        ownPart(observed, name) !== undefined &&
        ownPart(desired, name) === undefined,
    )
    .map((name) => `data.${name}`);
}
