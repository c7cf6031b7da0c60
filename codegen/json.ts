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
  type FunctionType,
  flexibleArray,
  fn,
  type NamedType,
  qualified,
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
        allowKeys(obj, path, [
          'kind',
          'name',
          'fields',
          'packed',
          'pack',
          'packedOn',
          'align',
          'targets',
          'description',
        ]);
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
        if (isObj(to) && to['kind'] === 'function')
          return { kind: 'pointer', to: functionRef(to, `${path}.to`) };
        return { kind: 'pointer', to: to === 'void' ? t.void : typeRef(to, `${path}.to`, depth + 1) };
      }
      case 'function':
        throw new LayoutError(
          path,
          'a function type is only valid behind a pointer ({ "kind": "pointer", "to": ... })',
        );
      case 'const':
      case 'volatile': {
        allowKeys(o, path, ['kind', 'of']);
        return qualified(typeRef(o['of'], `${path}.of`, depth + 1), { [o['kind']]: true });
      }
      case 'array': {
        if (o['flexible'] !== undefined) {
          allowKeys(o, path, ['kind', 'of', 'flexible']);
          if (o['flexible'] !== true)
            throw new LayoutError(
              `${path}.flexible`,
              `expected true (or no "flexible"), got ${show(o['flexible'])}`,
            );
          return flexibleArray(typeRef(o['of'], `${path}.of`, depth + 1));
        }
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
        allowKeys(o, path, ['kind', 'fields', 'packed', 'pack', 'packedOn', 'align']);
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
          `expected "pointer", "array", "const", "volatile", "struct" or "union", got ${show(o['kind'])}`,
        );
    }
  };

  const functionRef = (o: Obj, path: string): FunctionType => {
    allowKeys(o, path, ['kind', 'returns', 'params', 'variadic']);
    const r = o['returns'];
    const returns = r === 'void' || r === undefined ? t.void : typeRef(r, `${path}.returns`);
    const params = o['params'] ?? [];
    if (!Array.isArray(params))
      throw new LayoutError(`${path}.params`, `expected an array of parameter types, got ${show(params)}`);
    const variadic = o['variadic'];
    if (variadic !== undefined && typeof variadic !== 'boolean')
      throw new LayoutError(`${path}.variadic`, `expected true or false, got ${show(variadic)}`);
    if (variadic === true && params.length === 0)
      throw new LayoutError(`${path}.variadic`, 'a variadic function needs at least one parameter');
    return fn(
      returns,
      params.map((p, i) => {
        if (isObj(p) && p['kind'] === 'function')
          return { kind: 'pointer', to: functionRef(p, `${path}.params[${i}]`) } as Type;
        return typeRef(p, `${path}.params[${i}]`);
      }),
      { variadic: variadic === true },
    );
  };

  const targetList = (v: Json | undefined, path: string): string[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string'))
      throw new LayoutError(path, `expected a non-empty array of target names, got ${show(v)}`);
    return v as string[];
  };

  const fillRecord = (rec: Record<string, unknown>, o: Obj, path: string, depth = 0): void => {
    if (depth > MAX_NESTING)
      throw new LayoutError(path, `types are nested more than ${MAX_NESTING} levels deep by value`);
    const packed = o['packed'];
    if (packed !== undefined && typeof packed !== 'boolean')
      throw new LayoutError(`${path}.packed`, `expected true or false, got ${show(packed)}`);
    rec['packed'] = packed === true;
    if (o['align'] !== undefined) rec['align'] = expectInt(o['align'], `${path}.align`, 'an alignment');
    if (o['pack'] !== undefined)
      rec['pack'] = expectInt(o['pack'], `${path}.pack`, 'a packing (power of two)');
    const packedOn = targetList(o['packedOn'], `${path}.packedOn`);
    if (packedOn) rec['packedOn'] = packedOn;
    const targets = targetList(o['targets'], `${path}.targets`);
    if (targets) rec['targets'] = targets;
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
        allowKeys(f, fpath, ['anonymous', 'name', 'targets']);
        const inner = expectObj(f['anonymous'], `${fpath}.anonymous`, 'an untagged struct or union');
        if (inner['kind'] !== 'struct' && inner['kind'] !== 'union') {
          throw new LayoutError(
            `${fpath}.anonymous.kind`,
            `expected "struct" or "union", got ${show(inner['kind'])}`,
          );
        }
        allowKeys(inner, `${fpath}.anonymous`, ['kind', 'fields', 'packed', 'pack', 'packedOn', 'align']);
        const rec2 = {
          kind: inner['kind'],
          name: undefined,
          fields: [],
          packed: false,
          align: undefined,
        } as Record<string, unknown>;
        fillRecord(rec2, inner, fpath, depth + 1);
        const targets = targetList(f['targets'], `${fpath}.targets`);
        return {
          kind: 'anonymous',
          key,
          record: rec2 as unknown as RecordType,
          ...(targets ? { targets } : {}),
        };
      }
      // An unnamed bitfield is known in messages by its place in the list.
      const unnamed = f['name'] === undefined && f['bits'] !== undefined;
      const name = unnamed
        ? `fields[${j}]`
        : expectString(f['name'], `${path}.fields[${j}].name`, 'a field name');
      const fpath = `${path}.${name}`;
      const targets = targetList(f['targets'], `${fpath}.targets`);
      const only = targets ? { targets } : {};
      if ('pad' in f) {
        allowKeys(f, fpath, ['name', 'pad', 'targets']);
        return { kind: 'pad', name, size: expectInt(f['pad'], `${fpath}.pad`, 'a padding size'), ...only };
      }
      allowKeys(f, fpath, ['name', 'type', 'align', 'bits', 'targets']);
      const align =
        f['align'] === undefined ? undefined : expectInt(f['align'], `${fpath}.align`, 'an alignment');
      const bits =
        f['bits'] === undefined ? {} : { bits: expectInt(f['bits'], `${fpath}.bits`, 'a bit width') };
      return {
        kind: 'field',
        name,
        type: typeRef(f['type'], `${fpath}.type`, depth + 1),
        align,
        ...bits,
        ...(unnamed ? { unnamed: true } : {}),
        ...only,
      };
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
