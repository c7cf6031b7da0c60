/**
 * TypeScript emitter: named constants (SIZEOF_, ALIGNOF_, OFFSETOF_, LENGTHOF_, STRIDEOF_) and one get/set
 * pair per scalar member of every named record, for one target.
 *
 * The accessors are for hot paths: literal offsets, typed-array views indexed with `>>> shift` (p is an
 * unsigned 32-bit byte offset and may exceed 2^31), no allocation, no closures, BigInt only for 64-bit
 * integers. A member whose address is not a multiple of its size whenever the record is aligned (packed,
 * or i386's 4-aligned 64-bit members) goes through the DataView instead, little-endian like every target.
 * Pointers follow the heap convention: get returns the low 32-bit word (an offset into the heap); on 64-bit
 * targets set writes lo = v and hi = v ? m.baseHi : 0. Each pointer field also gets `get_X_checked` (the offset,
 * or a RangeError for an address outside the heap) and `get_X_address` / `set_X_address` (the whole address
 * as a bigint), for pointers that C code stored.
 */
import type { Target } from './abi';
import { bannerText } from './emit-c';
import { LayoutError } from './errors';
import { type ElementType, type FlatMember, flattenRecord, type Layout } from './layout';
import type { ScalarType } from './types';

export interface EmitTsOptions {
  readonly source: string;
}

interface Access {
  /** Typed-array view name, bytes per element. */
  readonly view: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'u64' | 'i64';
  readonly unit: 1 | 2 | 4 | 8;
  /** DataView method suffix. */
  readonly dv: string;
  readonly tsType: 'number' | 'bigint' | 'boolean';
  readonly bool: boolean;
  /** A 64-bit pointer: two 32-bit words. */
  readonly pointer64: boolean;
}

function accessOf(element: ElementType, target: Target): Access | undefined {
  if (element.kind === 'struct' || element.kind === 'union') return undefined;
  if (element.kind === 'pointer') {
    return {
      view: 'u32',
      unit: 4,
      dv: 'Uint32',
      tsType: 'number',
      bool: false,
      pointer64: target.pointerSize === 8,
    };
  }
  const s = (element.kind === 'enum' ? element.underlying : element) as ScalarType;
  const size = target.scalars[s.name][0];
  if (s.name === 'bool')
    return { view: 'u8', unit: 1, dv: 'Uint8', tsType: 'boolean', bool: true, pointer64: false };
  if (s.name === 'float32')
    return { view: 'f32', unit: 4, dv: 'Float32', tsType: 'number', bool: false, pointer64: false };
  if (s.name === 'float64')
    return { view: 'f64', unit: 8, dv: 'Float64', tsType: 'number', bool: false, pointer64: false };
  const unsigned =
    /^(uint|uchar|ushort|ulong|ulonglong|size_t|uintptr_t)/.test(s.name) ||
    (s.name === 'char' && !target.charSigned);
  const bits = size * 8;
  const view = `${unsigned ? 'u' : 'i'}${bits}` as Access['view'];
  const dv = size === 8 ? (unsigned ? 'BigUint64' : 'BigInt64') : `${unsigned ? 'Uint' : 'Int'}${bits}`;
  return {
    view,
    unit: size as Access['unit'],
    dv,
    tsType: size === 8 ? 'bigint' : 'number',
    bool: false,
    pointer64: false,
  };
}

const SHIFT: Readonly<Record<number, number>> = { 1: 0, 2: 1, 4: 2, 8: 3 };
const INDEX_NAMES = ['i', 'j', 'k'];

function indexName(n: number): string {
  return INDEX_NAMES[n] ?? `i${n}`;
}

/** `p + 16 + i * 8` */
function addressExpr(f: FlatMember, extra = 0): string {
  let s = 'p';
  const off = f.offset + extra;
  if (off !== 0) s += ` + ${off}`;
  f.indices.forEach((x, n) => {
    s += x.stride === 1 ? ` + ${indexName(n)}` : ` + ${indexName(n)} * ${x.stride}`;
  });
  return s;
}

function typedIndex(addr: string, unit: number): string {
  if (unit === 1) return addr;
  return addr === 'p' ? `p >>> ${SHIFT[unit]}` : `(${addr}) >>> ${SHIFT[unit]}`;
}

/** Emits the accessors module for one target. */
export function emitTs(layout: Layout, options: EmitTsOptions): string {
  const target = layout.target;
  const out: string[] = [];
  const names = new Map<string, string>();
  const claim = (name: string, path: string) => {
    const prior = names.get(name);
    if (prior !== undefined) {
      throw new LayoutError(
        path,
        `TypeScript name ${name} is also generated for ${prior}; rename one of them`,
      );
    }
    names.set(name, path);
  };
  const constant = (name: string, value: number, path: string) => {
    claim(name, path);
    out.push(`export const ${name} = ${value};`);
  };

  out.push(`// ${bannerText(options.source)}`);
  out.push(
    `// Target: ${target.name} (pointers ${target.pointerSize} bytes). p is an unsigned 32-bit byte offset.`,
  );
  out.push('');
  out.push(
    '/** The views over one buffer that every accessor takes; baseHi is the high word of pointer fields. */',
  );
  out.push('export interface LayoutViews {');
  for (const [k, v] of [
    ['u8', 'Uint8Array'],
    ['i8', 'Int8Array'],
    ['u16', 'Uint16Array'],
    ['i16', 'Int16Array'],
    ['u32', 'Uint32Array'],
    ['i32', 'Int32Array'],
    ['f32', 'Float32Array'],
    ['f64', 'Float64Array'],
    ['u64', 'BigUint64Array'],
    ['i64', 'BigInt64Array'],
    ['dv', 'DataView'],
    ['baseHi', 'number'],
  ]) {
    out.push(`  ${k}: ${v};`);
  }
  out.push('}');

  for (const d of layout.declarations) {
    if (d.kind === 'enum') {
      out.push('', `// enum ${d.name} (stored as ${d.underlying.name})`);
      for (const [name, value] of d.members) constant(name, value, `${d.name}.${name}`);
    }
  }

  for (const [rec, rl] of layout.records) {
    const name = rec.name!;
    const upper = name.toUpperCase();
    out.push('', `// ${rec.kind} ${name}`);
    constant(`SIZEOF_${upper}`, rl.size, name);
    constant(`ALIGNOF_${upper}`, rl.align, name);
    for (const f of flattenRecord(rl)) {
      const path = `${name}.${f.path.join('.')}`;
      const suffix = f.path.join('_');
      const cname = `${upper}_${suffix.toUpperCase()}`;
      constant(`OFFSETOF_${cname}`, f.offset, path);
      const own = f.member.dims;
      const ownIndices = f.indices.slice(f.indices.length - own.length);
      ownIndices.forEach((x, n) => {
        const dim = n === 0 ? '' : `_DIM${n}`;
        constant(`LENGTHOF_${cname}${dim}`, x.length, path);
        constant(`STRIDEOF_${cname}${dim}`, x.stride, path);
      });
      const access = accessOf(f.member.element, target);
      if (access && f.member.kind === 'field') emitAccessors(out, claim, `${name}_`, suffix, path, f, access);
    }
  }
  out.push('');
  return out.join('\n');
}

function emitAccessors(
  out: string[],
  claim: (name: string, path: string) => void,
  prefix: string,
  suffix: string,
  path: string,
  f: FlatMember,
  a: Access,
): void {
  const getName = `${prefix}get_${suffix}`;
  const setName = `${prefix}set_${suffix}`;
  claim(getName, path);
  claim(setName, path);
  const idx = f.indices.map((_, n) => `, ${indexName(n)}: number`).join('');
  const aligned = f.guaranteedAlign >= a.unit;
  const addr = addressExpr(f);
  let get: string;
  let set: string[];
  if (aligned) {
    const at = `m.${a.view}[${typedIndex(addr, a.unit)}]`;
    if (a.bool) {
      get = `return ${at} !== 0;`;
      set = [`${at} = v ? 1 : 0;`];
    } else if (a.pointer64) {
      get = `return ${at};`;
      set = [`const w = ${typedIndex(addr, 4)};`, 'm.u32[w] = v;', 'm.u32[w + 1] = v ? m.baseHi : 0;'];
    } else {
      get = `return ${at};`;
      set = [`${at} = v;`];
    }
  } else {
    const le = a.unit === 1 ? '' : ', true';
    if (a.bool) {
      get = `return m.dv.getUint8(${addr}) !== 0;`;
      set = [`m.dv.setUint8(${addr}, v ? 1 : 0);`];
    } else if (a.pointer64) {
      get = `return m.dv.getUint32(${addr}, true);`;
      set = [
        `m.dv.setUint32(${addr}, v, true);`,
        `m.dv.setUint32(${addressExpr(f, 4)}, v ? m.baseHi : 0, true);`,
      ];
    } else {
      get = `return m.dv.get${a.dv}(${addr}${le});`;
      set = [`m.dv.set${a.dv}(${addr}, v${le});`];
    }
  }
  out.push(`export function ${getName}(m: LayoutViews, p: number${idx}): ${a.tsType} {`, `  ${get}`, '}');
  out.push(`export function ${setName}(m: LayoutViews, p: number${idx}, v: ${a.tsType}): void {`);
  for (const line of set) out.push(`  ${line}`);
  out.push('}');
  if (f.member.element.kind === 'pointer') emitPointerForms(out, claim, getName, setName, path, f, a, idx);
}

/**
 * A pointer field's other forms. The plain getter returns the low word, the heap offset, which is only right
 * for a pointer into this heap (or NULL); C code may store any address. `_checked` returns the offset too, but
 * throws a RangeError for an address outside the heap (high word other than `m.baseHi`); `_address` returns
 * the whole address as a bigint, and its setter writes one.
 */
function emitPointerForms(
  out: string[],
  claim: (name: string, path: string) => void,
  getName: string,
  setName: string,
  path: string,
  f: FlatMember,
  a: Access,
  idx: string,
): void {
  const checkedName = `${getName}_checked`;
  const addressName = `${getName}_address`;
  const setAddressName = `${setName}_address`;
  claim(checkedName, path);
  claim(addressName, path);
  claim(setAddressName, path);
  const aligned = f.guaranteedAlign >= a.unit;
  const lo = aligned ? `m.u32[${typedIndex(addressExpr(f), 4)}]` : `m.dv.getUint32(${addressExpr(f)}, true)`;
  const hi = aligned
    ? `m.u32[${typedIndex(addressExpr(f, 4), 4)}]`
    : `m.dv.getUint32(${addressExpr(f, 4)}, true)`;
  const args = `m, p${f.indices.map((_, n) => `, ${indexName(n)}`).join('')}`;
  if (a.pointer64) {
    out.push(`export function ${checkedName}(m: LayoutViews, p: number${idx}): number {`);
    out.push(`  const lo = ${lo};`, `  const hi = ${hi};`);
    out.push(`  if (hi === (lo === 0 ? 0 : m.baseHi)) return lo;`);
    out.push(
      `  throw new RangeError(\`${path}: 0x\${hi.toString(16)}\${lo.toString(16).padStart(8, '0')} is neither NULL nor an address in this heap\`);`,
    );
    out.push('}');
    out.push(`export function ${addressName}(m: LayoutViews, p: number${idx}): bigint {`);
    out.push(`  return (BigInt(${hi}) << 32n) | BigInt(${lo});`, '}');
    out.push(`export function ${setAddressName}(m: LayoutViews, p: number${idx}, v: bigint): void {`);
    if (aligned) {
      out.push(`  const w = ${typedIndex(addressExpr(f), 4)};`);
      out.push('  m.u32[w] = Number(v & 0xffffffffn);', '  m.u32[w + 1] = Number((v >> 32n) & 0xffffffffn);');
    } else {
      out.push(`  m.dv.setUint32(${addressExpr(f)}, Number(v & 0xffffffffn), true);`);
      out.push(`  m.dv.setUint32(${addressExpr(f, 4)}, Number((v >> 32n) & 0xffffffffn), true);`);
    }
    out.push('}');
  } else {
    // 32-bit pointers: the whole address is the word; an offset is only meaningful for an image of this heap.
    out.push(`export function ${checkedName}(m: LayoutViews, p: number${idx}): number {`);
    out.push(`  return ${getName}(${args});`, '}');
    out.push(`export function ${addressName}(m: LayoutViews, p: number${idx}): bigint {`);
    out.push(`  return BigInt(${lo});`, '}');
    out.push(`export function ${setAddressName}(m: LayoutViews, p: number${idx}, v: bigint): void {`);
    out.push(`  ${setName}(${args}, Number(v & 0xffffffffn));`, '}');
  }
}
