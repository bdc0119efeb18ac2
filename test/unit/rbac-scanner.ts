// Finds every Kubernetes API call the operator can make, by reading its source: the files main.ts
// imports (not the CLI, not keyrotor/verify), each client-node API method called on a client class the
// file imports, CustomObjectsApi calls with their plural, and a watch for every list an informer makes.
// What it cannot resolve it reports, so a new kind of call cannot slip past the RBAC review.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import * as client from '@kubernetes/client-node';
import ts from 'typescript';

import * as names from '../../operator/src/api/names.ts';

export interface ApiCall {
  readonly file: string;
  readonly line: number;
  readonly method: string;
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
}

export interface ScanResult {
  readonly calls: readonly ApiCall[];
  /** "file:line what": calls or watches the scanner could not map; each needs a look. */
  readonly unresolved: readonly string[];
  readonly files: readonly string[];
}

/** The API group of each generated client class keyrotor may use; another class is reported. */
const GROUP_OF_CLIENT: Record<string, string> = {
  CoreV1Api: '',
  AppsV1Api: 'apps',
  RbacAuthorizationV1Api: 'rbac.authorization.k8s.io',
  CoordinationV1Api: 'coordination.k8s.io',
  EventsV1Api: 'events.k8s.io',
  AuthenticationV1Api: 'authentication.k8s.io',
  AuthorizationV1Api: 'authorization.k8s.io',
  AdmissionregistrationV1Api: 'admissionregistration.k8s.io',
  BatchV1Api: 'batch',
  NetworkingV1Api: 'networking.k8s.io',
};
const VERB_OF: Record<string, string> = {
  read: 'get',
  get: 'get',
  list: 'list',
  create: 'create',
  patch: 'patch',
  replace: 'update',
  delete: 'delete',
  deleteCollection: 'deletecollection',
};
const TYPED =
  /^(read|list|create|patch|replace|deleteCollection|delete)(Namespaced)?([A-Z][A-Za-z]*?)(Status|Scale|ForAllNamespaces)?$/;
const CUSTOM = /^(get|list|create|patch|replace|delete)(Namespaced|Cluster)CustomObject(Status|Scale)?$/;

const plural = (kind: string) => {
  const lower = kind.toLowerCase();
  if (lower.endsWith('y')) return `${lower.slice(0, -1)}ies`;
  return lower.endsWith('s') ? `${lower}es` : `${lower}s`;
};

/** The operator's runtime files: main.ts and everything it imports for its values (not `import type`). */
function reachable(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    for (const statement of source.statements) {
      const typeOnly =
        (ts.isImportDeclaration(statement) &&
          statement.importClause?.phaseModifier === ts.SyntaxKind.TypeKeyword) ||
        (ts.isExportDeclaration(statement) && statement.isTypeOnly);
      const specifier =
        ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)
          ? statement.moduleSpecifier
          : undefined;
      if (typeOnly || specifier === undefined || !ts.isStringLiteral(specifier)) continue;
      if (specifier.text.startsWith('.')) visit(path.resolve(path.dirname(file), specifier.text));
    }
  };
  visit(entry);
  return [...seen].sort();
}

/** The value classes a file imports from @kubernetes/client-node. */
function clientClasses(source: ts.SourceFile): string[] {
  const classes: string[] = [];
  for (const statement of source.statements) {
    if (
      !ts.isImportDeclaration(statement) ||
      statement.importClause?.phaseModifier === ts.SyntaxKind.TypeKeyword
    )
      continue;
    const specifier = statement.moduleSpecifier;
    if (!ts.isStringLiteral(specifier) || specifier.text !== '@kubernetes/client-node') continue;
    const bindings = statement.importClause?.namedBindings;
    if (bindings === undefined || !ts.isNamedImports(bindings)) continue;
    for (const element of bindings.elements)
      if (!element.isTypeOnly && /Api$/.test(element.name.text)) classes.push(element.name.text);
  }
  return classes;
}

/** Whether a generated client class itself defines the method (not Object.prototype's toString). */
const hasMethod = (className: string, method: string) => {
  const type = (client as unknown as Record<string, { prototype?: object } | undefined>)[className];
  return type?.prototype !== undefined && Object.hasOwn(type.prototype, method);
};

/**
 * The strings an expression can be: literals, names.ts constants, local constants, both arms of a
 * conditional, and a parameter's arguments at every call of its function in the same file.
 */
function resolve(expression: ts.Expression, source: ts.SourceFile, depth = 0): string[] | undefined {
  if (depth > 4) return undefined;
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression))
    return [expression.text];
  if (ts.isConditionalExpression(expression)) {
    const [a, b] = [
      resolve(expression.whenTrue, source, depth + 1),
      resolve(expression.whenFalse, source, depth + 1),
    ];
    return a && b ? [...a, ...b] : undefined;
  }
  if (!ts.isIdentifier(expression)) return undefined;
  const constant = (names as Record<string, unknown>)[expression.text];
  if (typeof constant === 'string') return [constant];
  let found: string[] | undefined;
  const visit = (node: ts.Node) => {
    if (found) return;
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.name.text === expression.text) {
      if (node.initializer) found = resolve(node.initializer, source, depth + 1);
    } else if (ts.isParameter(node) && ts.isIdentifier(node.name) && node.name.text === expression.text) {
      found = argumentsOf(node, source, depth);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function argumentsOf(parameter: ts.ParameterDeclaration, source: ts.SourceFile, depth: number) {
  const fn = parameter.parent;
  const index = fn.parameters.indexOf(parameter);
  // A function's own name, or the variable an arrow function is assigned to.
  const named = ts.isVariableDeclaration(fn.parent) ? fn.parent.name : fn.name;
  const fnName = named !== undefined && 'text' in named ? named.text : undefined;
  if (fnName === undefined) return undefined;
  const values: string[] = [];
  const state = { complete: true };
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const calleeName = ts.isPropertyAccessExpression(callee)
        ? callee.name.text
        : ts.isIdentifier(callee)
          ? callee.text
          : '';
      const argument = node.arguments[index];
      if (calleeName === fnName && argument !== undefined) {
        const resolved = resolve(argument, source, depth + 1);
        if (resolved) values.push(...resolved);
        else state.complete = false;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return state.complete && values.length > 0 ? values : undefined;
}

/** A property of an object literal: assigned, shorthand, or from a spread of a local constant. */
function propertyOf(
  object: ts.ObjectLiteralExpression,
  name: string,
  source: ts.SourceFile,
): string[] | undefined {
  for (const property of object.properties) {
    if (ts.isPropertyAssignment(property) && property.name.getText(source) === name)
      return resolve(property.initializer, source);
    if (ts.isShorthandPropertyAssignment(property) && property.name.text === name)
      return resolve(property.name, source);
    if (ts.isSpreadAssignment(property) && ts.isIdentifier(property.expression)) {
      const spread = localObject(property.expression.text, source);
      const found = spread && propertyOf(spread, name, source);
      if (found) return found;
    }
  }
  return undefined;
}

function localObject(name: string, source: ts.SourceFile): ts.ObjectLiteralExpression | undefined {
  let found: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node) => {
    if (
      ts.isVariableDeclaration(node) &&
      ts.isIdentifier(node.name) &&
      node.name.text === name &&
      node.initializer !== undefined &&
      ts.isObjectLiteralExpression(node.initializer)
    )
      found = node.initializer;
    if (!found) ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The `plural` of a CustomObjectsApi call's request object. */
function pluralOf(call: ts.CallExpression, source: ts.SourceFile): string[] | undefined {
  const request = call.arguments[0];
  return request !== undefined && ts.isObjectLiteralExpression(request)
    ? propertyOf(request, 'plural', source)
    : undefined;
}

/** The `group` of a CustomObjectsApi call's request object (keyrotor.dev, or another's CRD). */
function groupOf(call: ts.CallExpression, source: ts.SourceFile): string[] | undefined {
  const request = call.arguments[0];
  return request !== undefined && ts.isObjectLiteralExpression(request)
    ? propertyOf(request, 'group', source)
    : undefined;
}

/** The resources an informer's watch path ends in: `.../secrets`, `.../${PLURAL}`, `.../${kind}`. */
function watchedResources(informer: ts.NewExpression, source: ts.SourceFile): string[] | undefined {
  const options = informer.arguments?.[0];
  if (options === undefined || !ts.isObjectLiteralExpression(options)) return undefined;
  const property = options.properties.find(
    (candidate): candidate is ts.PropertyAssignment =>
      ts.isPropertyAssignment(candidate) && candidate.name.getText(source) === 'path',
  );
  const value = property?.initializer;
  if (value === undefined) return undefined;
  if (ts.isStringLiteral(value) || ts.isNoSubstitutionTemplateLiteral(value))
    return [value.text.split('/').pop() ?? ''];
  if (!ts.isTemplateExpression(value)) return undefined;
  const last = value.templateSpans.at(-1);
  if (last === undefined) return undefined;
  if (last.literal.text !== '') return [last.literal.text.split('/').pop() ?? ''];
  return resolve(last.expression, source);
}

/** The informer (`new ResilientInformer({...})`) whose construction encloses a node, if any. */
const enclosingInformer = (node: ts.Node): ts.NewExpression | undefined => {
  for (let up = node.parent; !ts.isSourceFile(up); up = up.parent)
    if (ts.isNewExpression(up) && /Informer$/.test(up.expression.getText())) return up;
  return undefined;
};

interface FileScan {
  readonly source: ts.SourceFile;
  readonly relative: string;
  readonly classes: readonly string[];
  readonly calls: ApiCall[];
  readonly unresolved: string[];
}

const lineOf = (scan: FileScan, node: ts.Node) =>
  scan.source.getLineAndCharacterOfPosition(node.getStart(scan.source)).line + 1;

function record(
  scan: FileScan,
  node: ts.Node,
  method: string,
  group: string,
  resource: string,
  verb: string,
) {
  const line = lineOf(scan, node);
  scan.calls.push({ file: scan.relative, line, method, group, resource, verb });
  const informer = verb === 'list' ? enclosingInformer(node) : undefined;
  if (informer === undefined) return;
  // An informer lists, then watches its path: the path must name what it lists.
  if (watchedResources(informer, scan.source)?.includes(resource) === true)
    scan.calls.push({ file: scan.relative, line, method, group, resource, verb: 'watch' });
  else
    scan.unresolved.push(`${scan.relative}:${line} ${method}: informer path does not resolve to ${resource}`);
}

/** A CustomObjectsApi call: group and plural from its request (keyrotor.dev's, or another CRD's). */
function scanCustomCall(scan: FileScan, node: ts.CallExpression, method: string, custom: RegExpExecArray) {
  const where = `${scan.relative}:${lineOf(scan, node)} ${method}`;
  const plurals = pluralOf(node, scan.source);
  const groups = groupOf(node, scan.source);
  if (plurals === undefined) scan.unresolved.push(`${where}: plural not resolved`);
  if (groups?.length !== 1) scan.unresolved.push(`${where}: group not resolved to one`);
  const sub = custom[3] ? `/${custom[3].toLowerCase()}` : '';
  for (const resource of plurals ?? [])
    record(scan, node, method, groups?.[0] ?? '?', resource + sub, VERB_OF[custom[1] ?? ''] ?? '?');
}

/** A method call on a CustomObjectsApi (plural from its request) or on a typed client the file imports. */
function scanCall(scan: FileScan, node: ts.CallExpression, method: string): void {
  const where = `${scan.relative}:${lineOf(scan, node)} ${method}`;
  const custom = CUSTOM.exec(method);
  if (custom && scan.classes.includes('CustomObjectsApi')) {
    scanCustomCall(scan, node, method, custom);
    return;
  }
  const owners = scan.classes.filter(
    (name) => GROUP_OF_CLIENT[name] !== undefined && hasMethod(name, method),
  );
  const typed = TYPED.exec(method);
  const owner = owners[0];
  if (owner === undefined) return;
  if (owners.length > 1) scan.unresolved.push(`${where}: on ${owners.join(' or ')}`);
  else if (typed === null) scan.unresolved.push(`${where}: not a known verb`);
  else {
    const sub = typed[4] === 'Status' || typed[4] === 'Scale' ? `/${typed[4].toLowerCase()}` : '';
    const resource = plural(typed[3] ?? '') + sub;
    record(scan, node, method, GROUP_OF_CLIENT[owner] ?? '?', resource, VERB_OF[typed[1] ?? ''] ?? '?');
  }
}

/** kube/informer-sources.ts: its list calls are generic (resource by argument), made at each call site. */
const SOURCE_HELPER = 'kube/informer-sources.ts';

/**
 * `customObjectSource(custom, { group, version, plural }, namespace)`: the informer lists and watches
 * that resource (the helper builds the watch path from the same plural). It must be spread into an
 * informer's options; anywhere else it is unresolved.
 */
function scanSourceHelper(scan: FileScan, node: ts.CallExpression): void {
  const where = `${scan.relative}:${lineOf(scan, node)} customObjectSource`;
  const resource = node.arguments[1];
  const plurals =
    resource !== undefined && ts.isObjectLiteralExpression(resource)
      ? propertyOf(resource, 'plural', scan.source)
      : undefined;
  const groups =
    resource !== undefined && ts.isObjectLiteralExpression(resource)
      ? propertyOf(resource, 'group', scan.source)
      : undefined;
  if (plurals === undefined) scan.unresolved.push(`${where}: plural not resolved`);
  if (groups?.length !== 1) scan.unresolved.push(`${where}: group not resolved to one`);
  if (enclosingInformer(node) === undefined) scan.unresolved.push(`${where}: not inside an informer`);
  const line = lineOf(scan, node);
  for (const plural of plurals ?? [])
    for (const verb of ['list', 'watch'])
      scan.calls.push({
        file: scan.relative,
        line,
        method: 'customObjectSource',
        group: groups?.[0] ?? '?',
        resource: plural,
        verb,
      });
}

/**
 * Raw paths the table cannot see: a Watch, a request by hand, an informer made directly. informer.ts
 * watches the path its caller gives; every caller's list call names the same resource (checked above).
 */
function scanRaw(scan: FileScan, node: ts.Node): void {
  const inInformerModule = scan.relative.endsWith('kube/informer.ts');
  const callee =
    ts.isCallExpression(node) || ts.isNewExpression(node) ? node.expression.getText(scan.source) : '';
  const where = `${scan.relative}:${lineOf(scan, node)}`;
  if (ts.isNewExpression(node) && callee === 'Watch' && !inInformerModule)
    scan.unresolved.push(`${where} new Watch: a raw watch`);
  if (ts.isCallExpression(node) && (callee === 'fetch' || callee === 'request'))
    scan.unresolved.push(`${where} ${callee}: a raw request`);
  if (ts.isCallExpression(node) && callee === 'makeInformer' && !inInformerModule)
    scan.unresolved.push(`${where} makeInformer outside kube/informer.ts`);
}

/** Scans the operator that `entry` (operator/src/main.ts) starts. */
export function scanOperator(entry: string, root: string): ScanResult {
  const calls: ApiCall[] = [];
  const unresolved: string[] = [];
  const files = reachable(entry);
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const scan: FileScan = {
      source,
      relative: path.relative(root, file),
      classes: clientClasses(source),
      calls,
      unresolved,
    };
    for (const name of scan.classes)
      if (name !== 'CustomObjectsApi' && GROUP_OF_CLIENT[name] === undefined)
        unresolved.push(`${scan.relative}: client ${name} has no API group in the scanner`);
    const helper = scan.relative.endsWith(SOURCE_HELPER);
    const visit = (node: ts.Node) => {
      if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
        const method = node.expression.name.text;
        // The helper's own calls may only list custom objects: anything else it did would be unseen.
        if (helper && !/^list(Cluster|Namespaced)CustomObject$/.test(method))
          unresolved.push(
            `${scan.relative}:${lineOf(scan, node)} ${method}: a call in ${SOURCE_HELPER} other than a list`,
          );
        scanCall(scan, node, method);
      }
      if (
        ts.isCallExpression(node) &&
        ts.isIdentifier(node.expression) &&
        node.expression.text === 'customObjectSource'
      )
        scanSourceHelper(scan, node);
      scanRaw(scan, node);
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { calls, unresolved, files: files.map((file) => path.relative(root, file)) };
}
