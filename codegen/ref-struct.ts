/**
 * Builds ref-struct-di / ref-union-di / ref-array-di types from a description, for FFI users on the host ABI.
 * The optional packages are required lazily, on first use.
 *
 * Known limits of those packages (checked by test/codegen/ref-struct.test.ts):
 * - packed structs get the right offsets but the wrong alignment and size: ref-struct-di gives a packed
 *   struct the smallest alignment of its members (C: 1) and rounds the size up to it;
 * - alignment attributes and packed unions cannot be expressed, so they are rejected here;
 * - anonymous members become named members called by their key in the description;
 * - a member may not be named like a property of its types (`ref`, `toObject`, `toJSON`, `inspect`, ...):
 *   so pool_header (member `ref`) cannot be expressed.
 */
import { getTarget } from './abi';
import { LayoutError } from './errors';
import { computeLayout } from './layout';
import type { RecordType, ScalarName, Type, VoidType } from './types';

/** The parts of a ref-napi type this module relies on. */
export interface RefType {
  size: number;
  alignment: number;
  indirection: number;
  fields?: Record<string, { type: RefType; offset?: number }>;
}

interface RefModules {
  ref: { types: Record<string, RefType>; refType(t: RefType): RefType };
  Struct: (fields: Record<string, RefType>, opts?: { packed?: boolean }) => RefType;
  Union: (fields: Record<string, RefType>) => RefType;
  ArrayType: (type: RefType, length: number) => RefType;
}

let modules: RefModules | undefined;

function load(): RefModules {
  if (modules) return modules;
  try {
    const ref = require('ref-napi');
    modules = {
      ref,
      Struct: require('ref-struct-di')(ref),
      Union: require('ref-union-di')(ref),
      ArrayType: require('ref-array-di')(ref),
    };
    return modules;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new LayoutError(
      '',
      `ref-struct-di support needs the optional packages ref-napi, ref-struct-di, ref-union-di and ref-array-di ` +
        `(npm install ref-napi ref-struct-di ref-union-di ref-array-di): ${why}`,
    );
  }
}

const NOT_IN_REF: readonly string[] = ['longdouble', 'int128', 'uint128', 'wchar'];

function scalarType(m: RefModules, name: ScalarName, pointerSize: number): RefType {
  const wide = pointerSize === 8;
  if (NOT_IN_REF.includes(name)) throw new LayoutError(name, `ref-struct-di has no ${name} type`);
  const map: Record<Exclude<ScalarName, 'longdouble' | 'int128' | 'uint128' | 'wchar'>, string> = {
    int8: 'int8',
    int16: 'int16',
    int32: 'int32',
    int64: 'int64',
    uint8: 'uint8',
    uint16: 'uint16',
    uint32: 'uint32',
    uint64: 'uint64',
    float32: 'float',
    float64: 'double',
    bool: 'bool',
    char: 'char',
    schar: 'int8',
    uchar: 'uchar',
    short: 'short',
    ushort: 'ushort',
    int: 'int',
    uint: 'uint',
    long: 'long',
    ulong: 'ulong',
    longlong: 'longlong',
    ulonglong: 'ulonglong',
    size_t: 'size_t',
    ssize_t: wide ? 'int64' : 'int32',
    intptr_t: wide ? 'int64' : 'int32',
    uintptr_t: wide ? 'uint64' : 'uint32',
    ptrdiff_t: wide ? 'int64' : 'int32',
  };
  return m.ref.types[map[name as keyof typeof map]]!;
}

/** A ref-struct-di StructType (or ref-union-di UnionType) for `decl` on the host ABI. */
export function toRefType(decl: RecordType): RefType {
  const target = getTarget('host');
  computeLayout([decl], target); // every description error, with its path, before touching the packages
  const m = load();
  const cache = new Map<RecordType, RefType>();

  const typeOf = (type: Type | VoidType, path: string): RefType => {
    switch (type.kind) {
      case 'void':
        return m.ref.types['void']!;
      case 'scalar':
        if (NOT_IN_REF.includes(type.name))
          throw new LayoutError(path, `ref-struct-di has no ${type.name} type`);
        return scalarType(m, type.name, target.pointerSize);
      case 'enum':
        return scalarType(m, type.underlying.name, target.pointerSize);
      case 'typedef':
      case 'qualified':
        return typeOf(type.type, path);
      case 'pointer':
      case 'opaque':
        return m.ref.refType(m.ref.types['void']!);
      case 'array': {
        if (type.flexible)
          throw new LayoutError(path, 'ref-struct-di cannot express a flexible array member');
        let t = typeOf(type.element, path);
        for (let i = type.dims.length - 1; i >= 0; i--) t = m.ArrayType(t, type.dims[i]!);
        return t;
      }
      case 'struct':
      case 'union':
        return recordOf(type, path);
    }
  };

  const recordOf = (rec: RecordType, path: string): RefType => {
    const cached = cache.get(rec);
    if (cached) return cached;
    if (rec.align !== undefined)
      throw new LayoutError(path, 'ref-struct-di cannot express an alignment attribute');
    if (rec.pack !== undefined || rec.packedOn !== undefined || rec.targets !== undefined)
      throw new LayoutError(path, 'ref-struct-di cannot express pack(N), packedOn or targets');
    for (const f of rec.fields) {
      if (f.targets !== undefined)
        throw new LayoutError(
          `${path}.${f.kind === 'anonymous' ? f.key : f.name}`,
          'ref-struct-di cannot express per-target members',
        );
      if (f.kind === 'field' && f.bits !== undefined)
        throw new LayoutError(`${path}.${f.name}`, 'ref-struct-di cannot express a bitfield');
    }
    if (rec.packed && rec.kind === 'union')
      throw new LayoutError(path, 'ref-union-di cannot express a packed union');
    const fields: Record<string, RefType> = {};
    const reserved = (m.Struct({}) as unknown as { prototype: object }).prototype;
    for (const f of rec.fields) {
      const name = f.kind === 'anonymous' ? f.key : f.name;
      if (name in reserved) {
        throw new LayoutError(
          `${path}.${name}`,
          `ref-struct-di cannot have a member named '${name}' (its types define it)`,
        );
      }
      if (f.kind === 'pad') fields[f.name] = m.ArrayType(m.ref.types['uint8']!, f.size);
      else if (f.kind === 'anonymous') fields[f.key] = recordOf(f.record, `${path}.${f.key}`);
      else {
        if (f.align !== undefined) {
          throw new LayoutError(`${path}.${f.name}`, 'ref-struct-di cannot express an alignment attribute');
        }
        fields[f.name] = typeOf(f.type, `${path}.${f.name}`);
      }
    }
    const built = rec.kind === 'union' ? m.Union(fields) : m.Struct(fields, { packed: rec.packed });
    cache.set(rec, built);
    return built;
  };

  return recordOf(decl, decl.name ?? decl.kind);
}
