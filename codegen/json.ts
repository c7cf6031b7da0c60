/**
 * Descriptions in JSON (schema: codegen/SCHEMA.md). The document is checked strictly (unknown properties are
 * errors, so a typo such as "pakced" cannot pass silently), then turned into the same objects the TypeScript
 * builders make; names refer to declarations anywhere in the file, so pointers may point forward or to self.
 * Errors are LayoutErrors whose path names the declaration and field (`pool_header.ref._padding.type`).
 */
import { LayoutError } from './errors';
import { MAX_NESTING } from './layout';
import {
  type Field,
  type NamedType,
  type RecordType,
  SCALAR_NAMES,
  type ScalarName,
  type Type,
  t,
} from './types';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const SCALARS = new Set<string>(SCALAR_NAMES);

function isObj(v: Json | undefined): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectObj(v: Json | undefined, path: string, what: string): Obj {
  if (!isObj(v)) throw new LayoutError(path, `expected ${what} (an object), got ${show(v)}`);
  return v;
}

function show(v: Json | undefined): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function allowKeys(o: Obj, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k))
      throw new LayoutError(path, `unknown property '${k}' (allowed: ${allowed.join(', ')})`);
  }
}

function expectString(v: Json | undefined, path: string, what: string): string {
  if (typeof v !== 'string') throw new LayoutError(path, `expected ${what} (a string), got ${show(v)}`);
  return v;
}

function expectInt(v: Json | undefined, path: string, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new LayoutError(path, `expected ${what} (an integer), got ${show(v)}`);
  return v;
}

/** Parses JSON text into declarations; `file` prefixes syntax errors. */
export function parseJsonDescription(text: string, file = 'description'): NamedType[] {
  let doc: Json;
  try {
    // A UTF-8 byte order mark (editors on Windows write one) is not part of the JSON text.
    doc = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as Json;
  } catch (err) {
    throw new LayoutError(file, `not valid JSON: ${(err as Error).message}`);
  }
  return fromJson(doc);
}

/** Turns a parsed JSON document into declarations. */
export function fromJson(doc: unknown): NamedType[] {
  const root = expectObj(doc as Json, '$', 'a description');
  allowKeys(root, '$', ['$schema', 'description', 'types']);
  const list = root['types'];
  if (!Array.isArray(list))
    throw new LayoutError('$.types', `expected an array of declarations, got ${show(list)}`);

  // Pass 1: one (still empty) object per declaration, so references can be resolved in any order.
  const decls = new Map<string, NamedType>();
  const pending: { obj: Obj; decl: Record<string, unknown>; path: string }[] = [];
  list.forEach((item, i) => {
    const obj = expectObj(item, `$.types[${i}]`, 'a declaration');
    const kind = obj['kind'];
    const name = expectString(obj['name'], `$.types[${i}].name`, 'a name');
    const path = name;
    let decl: Record<string, unknown>;
    switch (kind) {
      case 'struct':
      case 'union':
        allowKeys(obj, path, ['kind', 'name', 'fields', 'packed', 'align', 'description']);
        decl = { kind, name, fields: [], packed: false, align: undefined };
        break;
      case 'typedef':
        allowKeys(obj, path, ['kind', 'name', 'type', 'description']);
        decl = { kind, name, type: undefined };
        break;
      case 'enum':
        allowKeys(obj, path, ['kind', 'name', 'underlying', 'members', 'description']);
        decl = { kind, name, underlying: undefined, members: [] };
        break;
      case 'opaque':
        allowKeys(obj, path, ['kind', 'name', 'tag', 'description']);
        decl = { kind, name, tag: obj['tag'] ?? 'struct' };
        if (decl['tag'] !== 'struct' && decl['tag'] !== 'union') {
          throw new LayoutError(`${path}.tag`, `expected "struct" or "union", got ${show(obj['tag'])}`);
        }
        break;
      default:
        throw new LayoutError(
          `$.types[${i}].kind`,
          `expected "struct", "union", "typedef", "enum" or "opaque", got ${show(kind)}`,
        );
    }
    if (decls.has(name) && !(kind === 'opaque' || decls.get(name)!.kind === 'opaque')) {
      throw new LayoutError(path, `'${name}' is declared twice`);
    }
    if (!decls.has(name) || decls.get(name)!.kind === 'opaque') decls.set(name, decl as unknown as NamedType);
    pending.push({ obj, decl, path });
  });

  const typeRef = (v: Json | undefined, path: string, depth = 0): Type => {
    if (depth > MAX_NESTING)
      throw new LayoutError(path, `types are nested more than ${MAX_NESTING} levels deep by value`);
    if (typeof v === 'string') {
      const d = decls.get(v);
      if (d) return d;
      if (SCALARS.has(v)) return t[v as ScalarName];
      throw new LayoutError(path, `unknown type '${v}'`);
    }
    const o = expectObj(v, path, 'a type (a name or an object)');
    switch (o['kind']) {
      case 'pointer': {
        allowKeys(o, path, ['kind', 'to']);
        const to = o['to'];
        return { kind: 'pointer', to: to === 'void' ? t.void : typeRef(to, `${path}.to`, depth + 1) };
      }
      case 'array': {
        allowKeys(o, path, ['kind', 'of', 'length']);
        const len = o['length'];
        const dims = Array.isArray(len) ? len : [len];
        if (dims.length === 0) throw new LayoutError(`${path}.length`, 'expected at least one dimension');
        const checked = dims.map((d, i) =>
          expectInt(d, `${path}.length${Array.isArray(len) ? `[${i}]` : ''}`, 'an array length'),
        );
        const element = typeRef(o['of'], `${path}.of`, depth);
        if (element.kind === 'array')
          return { kind: 'array', element: element.element, dims: [...checked, ...element.dims] };
        return { kind: 'array', element, dims: checked };
      }
      case 'struct':
      case 'union': {
        allowKeys(o, path, ['kind', 'fields', 'packed', 'align']);
        const rec = {
          kind: o['kind'],
          name: undefined,
          fields: [],
          packed: false,
          align: undefined,
        } as Record<string, unknown>;
        // Its fields are named from the member that holds it: `pool_header.ref._padding`, not `ref.type._padding`.
        fillRecord(rec, o, path.replace(/(\.type|\.of)+$/, ''), depth);
        return rec as unknown as RecordType;
      }
      default:
        throw new LayoutError(
          `${path}.kind`,
          `expected "pointer", "array", "struct" or "union", got ${show(o['kind'])}`,
        );
    }
  };

  const fillRecord = (rec: Record<string, unknown>, o: Obj, path: string, depth = 0): void => {
    if (depth > MAX_NESTING)
      throw new LayoutError(path, `types are nested more than ${MAX_NESTING} levels deep by value`);
    const packed = o['packed'];
    if (packed !== undefined && typeof packed !== 'boolean')
      throw new LayoutError(`${path}.packed`, `expected true or false, got ${show(packed)}`);
    rec['packed'] = packed === true;
    if (o['align'] !== undefined) rec['align'] = expectInt(o['align'], `${path}.align`, 'an alignment');
    const fields = o['fields'];
    if (!Array.isArray(fields))
      throw new LayoutError(`${path}.fields`, `expected an array of fields, got ${show(fields)}`);
    const out: Field[] = fields.map((fj, j) => {
      const f = expectObj(fj, `${path}.fields[${j}]`, 'a field');
      if ('anonymous' in f) {
        const key =
          f['name'] === undefined
            ? `anonymous${j}`
            : expectString(f['name'], `${path}.fields[${j}].name`, 'a key');
        const fpath = `${path}.${key}`;
        allowKeys(f, fpath, ['anonymous', 'name']);
        const inner = expectObj(f['anonymous'], `${fpath}.anonymous`, 'an untagged struct or union');
        if (inner['kind'] !== 'struct' && inner['kind'] !== 'union') {
          throw new LayoutError(
            `${fpath}.anonymous.kind`,
            `expected "struct" or "union", got ${show(inner['kind'])}`,
          );
        }
        allowKeys(inner, `${fpath}.anonymous`, ['kind', 'fields', 'packed', 'align']);
        const rec2 = {
          kind: inner['kind'],
          name: undefined,
          fields: [],
          packed: false,
          align: undefined,
        } as Record<string, unknown>;
        fillRecord(rec2, inner, fpath, depth + 1);
        return { kind: 'anonymous', key, record: rec2 as unknown as RecordType };
      }
      const name = expectString(f['name'], `${path}.fields[${j}].name`, 'a field name');
      const fpath = `${path}.${name}`;
      if ('pad' in f) {
        allowKeys(f, fpath, ['name', 'pad']);
        return { kind: 'pad', name, size: expectInt(f['pad'], `${fpath}.pad`, 'a padding size') };
      }
      allowKeys(f, fpath, ['name', 'type', 'align']);
      const align =
        f['align'] === undefined ? undefined : expectInt(f['align'], `${fpath}.align`, 'an alignment');
      return { kind: 'field', name, type: typeRef(f['type'], `${fpath}.type`, depth + 1), align };
    });
    rec['fields'] = out;
  };

  // Pass 2: fill every declaration in.
  for (const { obj, decl, path } of pending) {
    switch (decl['kind']) {
      case 'struct':
      case 'union':
        fillRecord(decl, obj, path);
        break;
      case 'typedef':
        decl['type'] = typeRef(obj['type'], `${path}.type`);
        break;
      case 'enum': {
        const u = expectString(obj['underlying'], `${path}.underlying`, 'an integer scalar name');
        if (!SCALARS.has(u)) throw new LayoutError(`${path}.underlying`, `unknown type '${u}'`);
        decl['underlying'] = t[u as ScalarName];
        const members = expectObj(obj['members'], `${path}.members`, 'an object of NAME: value');
        decl['members'] = Object.entries(members).map(([k, v]) => [
          k,
          expectInt(v, `${path}.${k}`, 'an enum value'),
        ]);
        break;
      }
    }
  }
  return pending.map((p) => p.decl as unknown as NamedType);
}
