/**
 * TypeScript emitter: named constants (SIZEOF_, ALIGNOF_, OFFSETOF_, LENGTHOF_, STRIDEOF_) and one get/set
 * pair per scalar member of every named record, for one target.
 *
 * The accessors are for hot paths: literal offsets, typed-array views indexed with `>>> shift` (p is an
 * unsigned 32-bit byte offset and may exceed 2^31), no allocation, no closures, BigInt only for 64-bit
 * integers. A member whose address is not a multiple of its size whenever the record is aligned (packed,
 * or i386's 4-aligned 64-bit members) goes through the DataView instead, in the target's byte order.
 * Typed arrays are in the host's byte order, so a little-endian target's module refuses to load on a
 * big-endian host, and a big-endian target (s390x) reads and writes every multi-byte member through the
 * DataView with littleEndian = false: the same module is right on every host.
 * Pointers follow the heap convention: get returns the low 32-bit word (an offset into the heap); on 64-bit
 * targets set writes lo = v and hi = v ? m.baseHi : 0 (the low word is the second one on big-endian). Each pointer
 * field also gets `get_X_checked` (the offset, or a RangeError for an address outside the heap) and
 * `get_X_address` / `set_X_address` (the whole address as a bigint), for pointers that C code stored.
 */
import type { Target } from './abi';
import { bannerText, flexibleMember, sizeofWithMacro as sizeofWithMacroName } from './emit-c';
import { LayoutError } from './errors';
import { type ElementType, type FlatMember, flattenRecord, isSignedScalar, type Layout } from './layout';
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
  // No JavaScript value holds a long double: constants only. __int128 has its own bigint accessors.
  if (s.name === 'longdouble' || s.name === 'int128' || s.name === 'uint128') return undefined;
  const size = target.scalars[s.name][0];
  if (s.name === 'bool')
    return { view: 'u8', unit: 1, dv: 'Uint8', tsType: 'boolean', bool: true, pointer64: false };
  if (s.name === 'float32')
    return { view: 'f32', unit: 4, dv: 'Float32', tsType: 'number', bool: false, pointer64: false };
  if (s.name === 'float64')
    return { view: 'f64', unit: 8, dv: 'Float64', tsType: 'number', bool: false, pointer64: false };
  const unsigned = !isSignedScalar(s.name, target);
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

/**
 * Names a module cannot bind with `export const` (ECMAScript reserved words, strict-mode and module
 * restrictions, TypeScript's contextual declarations); only enum members are emitted bare.
 */
const JS_RESERVED = new Set(
  (
    'arguments await break case catch class const continue debugger default delete do else enum eval export ' +
    'extends false finally for function if implements import in instanceof interface let new null package ' +
    'private protected public return static super switch this throw true try typeof var void while with yield'
  ).split(' '),
);

/** Accessors take p as an unsigned 32-bit offset: a record must fit below 2^32 bytes. */
const ACCESSOR_LIMIT = 2 ** 32;

/** Emits the accessors module for one target. */
export function emitTs(layout: Layout, options: EmitTsOptions): string {
  const target = layout.target;
  for (const d of layout.declarations) {
    if (d.kind !== 'enum') continue;
    for (const [name] of d.members) {
      if (JS_RESERVED.has(name))
        throw new LayoutError(
          `${d.name}.${name}`,
          `'${name}' is a JavaScript reserved word, so it cannot be exported as a constant; rename the enum member`,
        );
    }
  }
  for (const [rec, rl] of layout.records) {
    if (rl.size > ACCESSOR_LIMIT)
      throw new LayoutError(
        rec.name!,
        `${rl.size} bytes on ${target.name}: the accessors address a 32-bit heap, so a record must fit in 2^32 bytes`,
      );
  }
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
    `// Target: ${target.name} (pointers ${target.pointerSize} bytes, ${target.endian}-endian). p is an unsigned 32-bit byte offset.`,
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
  if (target.endian === 'little') {
    out.push(
      '',
      '// The accessors index typed arrays, which use the host byte order: refuse a big-endian host.',
      'if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {',
      `  throw new Error('layout accessors for ${target.name} (little-endian) loaded on a big-endian host');`,
      '}',
    );
  }

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
      const bf = f.member.bitfield;
      if (bf) {
        // No offsetof in C for a bitfield: its first bit from the record's start, and its width.
        constant(`BITOFFSETOF_${cname}`, f.container!.offset * 8 + bf.bitOffset, path);
        constant(`BITWIDTHOF_${cname}`, bf.width, path);
        emitBitfieldAccessors(out, claim, `${name}_`, suffix, path, f, rl.align, target);
        continue;
      }
      constant(`OFFSETOF_${cname}`, f.offset, path);
      const own = f.member.flexible ? f.member.dims.length + 1 : f.member.dims.length;
      const ownIndices = f.indices.slice(f.indices.length - own);
      ownIndices.forEach((x, n) => {
        const dim = n === 0 ? '' : `_DIM${n}`;
        // A flexible array's length is the caller's business (LENGTHOF_ would be 0).
        if (!(f.member.flexible && n === 0)) constant(`LENGTHOF_${cname}${dim}`, x.length, path);
        constant(`STRIDEOF_${cname}${dim}`, x.stride, path);
      });
      const access = accessOf(f.member.element, target);
      if (access && f.member.kind === 'field')
        emitAccessors(out, claim, `${name}_`, suffix, path, f, access, target.endian === 'big');
      const el = f.member.element;
      const s128 = el.kind === 'scalar' ? el : el.kind === 'enum' ? el.underlying : undefined;
      if (s128 && (s128.name === 'int128' || s128.name === 'uint128') && f.member.kind === 'field')
        emitInt128Accessors(
          out,
          claim,
          `${name}_`,
          suffix,
          path,
          f,
          s128.name === 'int128',
          target.endian === 'big',
        );
    }
    const flex = flexibleMember(rl);
    if (flex) {
      const fnName = `sizeof_${name}_with`;
      claim(fnName, `${name}.${flex.name}`);
      const stride = flex.elementSize * flex.dims.reduce((a, b) => a * b, 1);
      out.push(
        `/** Size of a ${name} whose ${flex.name} has n elements, rounded up to its alignment (as C's ${sizeofWithMacroName(name)}). */`,
        `export function ${fnName}(n: number): number {`,
        `  return Math.max(${rl.size}, Math.ceil((${flex.offset} + n * ${stride}) / ${rl.align}) * ${rl.align});`,
        '}',
      );
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
  bigEndian: boolean,
): void {
  const getName = `${prefix}get_${suffix}`;
  const setName = `${prefix}set_${suffix}`;
  claim(getName, path);
  claim(setName, path);
  const idx = f.indices.map((_, n) => `, ${indexName(n)}: number`).join('');
  // Typed arrays only where the byte order cannot differ from the target's (bytes, or a little-endian target).
  const aligned = f.guaranteedAlign >= a.unit && (a.unit === 1 || !bigEndian);
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
    const order = bigEndian ? 'false' : 'true';
    const le = a.unit === 1 ? '' : `, ${order}`;
    if (a.bool) {
      get = `return m.dv.getUint8(${addr}) !== 0;`;
      set = [`m.dv.setUint8(${addr}, v ? 1 : 0);`];
    } else if (a.pointer64) {
      const lo = bigEndian ? addressExpr(f, 4) : addr;
      const hi = bigEndian ? addr : addressExpr(f, 4);
      get = `return m.dv.getUint32(${lo}, ${order});`;
      set = [`m.dv.setUint32(${lo}, v, ${order});`, `m.dv.setUint32(${hi}, v ? m.baseHi : 0, ${order});`];
    } else {
      get = `return m.dv.get${a.dv}(${addr}${le});`;
      set = [`m.dv.set${a.dv}(${addr}, v${le});`];
    }
  }
  out.push(`export function ${getName}(m: LayoutViews, p: number${idx}): ${a.tsType} {`, `  ${get}`, '}');
  out.push(`export function ${setName}(m: LayoutViews, p: number${idx}, v: ${a.tsType}): void {`);
  for (const line of set) out.push(`  ${line}`);
  out.push('}');
  if (f.member.element.kind === 'pointer')
    emitPointerForms(out, claim, getName, setName, path, f, a, idx, bigEndian);
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
  bigEndian: boolean,
): void {
  const checkedName = `${getName}_checked`;
  const addressName = `${getName}_address`;
  const setAddressName = `${setName}_address`;
  claim(checkedName, path);
  claim(addressName, path);
  claim(setAddressName, path);
  // Typed arrays only where the byte order cannot differ from the target's; on a big-endian 64-bit target the
  // low word is the second one.
  const aligned = f.guaranteedAlign >= a.unit && !bigEndian;
  const order = bigEndian ? 'false' : 'true';
  const loAt = bigEndian && a.pointer64 ? addressExpr(f, 4) : addressExpr(f);
  const hiAt = bigEndian ? addressExpr(f) : addressExpr(f, 4);
  const lo = aligned ? `m.u32[${typedIndex(loAt, 4)}]` : `m.dv.getUint32(${loAt}, ${order})`;
  const hi = aligned ? `m.u32[${typedIndex(hiAt, 4)}]` : `m.dv.getUint32(${hiAt}, ${order})`;
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
      out.push(`  m.dv.setUint32(${loAt}, Number(v & 0xffffffffn), ${order});`);
      out.push(`  m.dv.setUint32(${hiAt}, Number((v >> 32n) & 0xffffffffn), ${order});`);
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

/** One piece of a bitfield that lies in one 1-, 2- or 4-byte window of the record declaring it. */
interface BitPart {
  /** Window start, in bytes from the field's own FlatMember offset (may be negative). */
  readonly rel: number;
  readonly unit: 1 | 2 | 4;
  /** First bit of the part within the window, and its bit count. */
  readonly shift: number;
  readonly bits: number;
  /** Where the part's bits go in the value. */
  readonly at: number;
  readonly aligned: boolean;
}

/**
 * The windows a bitfield's bits occupy. Allocation order is the ABI's (bit k of the record is byte k / 8): on a
 * little-endian target bit k is bit k % 8 of that byte and the field's first bit is its value's lowest; on a
 * big-endian one (s390x) bytes fill from their most significant bit and the field's first bit is its highest,
 * so a window is read big-endian and the shifts count from its top.
 */
function bitParts(f: FlatMember, outerAlign: number, bigEndian: boolean): BitPart[] {
  const bf = f.member.bitfield!;
  const container = f.container!;
  const parts: BitPart[] = [];
  const first = Math.floor(bf.bitOffset / 8);
  let bit = bf.bitOffset;
  const end = bf.bitOffset + bf.width;
  const strideAlign = Math.min(outerAlign, ...f.indices.map((x) => lowBit(x.stride)));
  while (bit < end) {
    const byte = Math.floor(bit / 8);
    let unit: 1 | 2 | 4 = 1;
    for (const u of [4, 2] as const) {
      const ws = Math.floor(byte / u) * u;
      if (ws + u <= container.size) {
        unit = u;
        break;
      }
    }
    const ws = Math.floor(byte / unit) * unit;
    const stop = Math.min(end, (ws + unit) * 8);
    const abs = container.offset + ws;
    parts.push({
      rel: ws - first,
      unit,
      shift: bigEndian ? (ws + unit) * 8 - stop : bit - ws * 8,
      bits: stop - bit,
      at: bigEndian ? end - stop : bit - bf.bitOffset,
      aligned: Math.min(strideAlign, lowBit(abs)) >= unit && (unit === 1 || !bigEndian),
    });
    bit = stop;
  }
  return parts;
}

function lowBit(n: number): number {
  if (n === 0) return 1 << 30;
  let b = 1;
  while (n % (b * 2) === 0) b *= 2;
  return b;
}

const VIEW_OF = { 1: 'u8', 2: 'u16', 4: 'u32' } as const;
const DV_OF = { 1: 'Uint8', 2: 'Uint16', 4: 'Uint32' } as const;
const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * get/set of a bitfield: each window is read with the unsigned view of its size (DataView when its address
 * is not guaranteed aligned), masked and shifted; set keeps the neighbouring bits. Widths up to 53 bits are
 * numbers (exact), wider ones bigints; bool bitfields are booleans; signed ones sign-extend.
 */
function emitBitfieldAccessors(
  out: string[],
  claim: (name: string, path: string) => void,
  prefix: string,
  suffix: string,
  path: string,
  f: FlatMember,
  outerAlign: number,
  target: Target,
): void {
  const bf = f.member.bitfield!;
  const getName = `${prefix}get_${suffix}`;
  const setName = `${prefix}set_${suffix}`;
  claim(getName, path);
  claim(setName, path);
  const el = f.member.element as ScalarType | { kind: 'enum'; underlying: ScalarType };
  const scalar = el.kind === 'enum' ? el.underlying : (el as ScalarType);
  const isBool = scalar.name === 'bool';
  const signed = bf.signed && !isBool && isSignedScalar(scalar.name, target);
  const w = bf.width;
  const big = w > 53;
  const tsType = isBool ? 'boolean' : big ? 'bigint' : 'number';
  const idx = f.indices.map((_, n) => `, ${indexName(n)}: number`).join('');
  const bigEndian = target.endian === 'big';
  const parts = bitParts(f, outerAlign, bigEndian);
  const order = bigEndian ? ', false' : ', true';
  const read = (p: BitPart): string => {
    const addr = addressExpr(f, p.rel);
    return p.aligned
      ? `m.${VIEW_OF[p.unit]}[${typedIndex(addr, p.unit)}]`
      : `m.dv.get${DV_OF[p.unit]}(${addr}${p.unit === 1 ? '' : order})`;
  };
  const write = (p: BitPart, value: string): string => {
    const addr = addressExpr(f, p.rel);
    return p.aligned
      ? `m.${VIEW_OF[p.unit]}[${typedIndex(addr, p.unit)}] = ${value};`
      : `m.dv.set${DV_OF[p.unit]}(${addr}, ${value}${p.unit === 1 ? '' : order});`;
  };
  const mask = (bits: number) => (bits === 32 ? 0xffffffff : 2 ** bits - 1);
  const partValue = (p: BitPart, word: string): string =>
    p.bits === 32 ? `(${word} >>> 0)` : `((${word} >>> ${p.shift}) & ${hex(mask(p.bits))})`;
  const get: string[] = [];
  const set: string[] = [];
  if (parts.length === 1) {
    const p = parts[0]!;
    if (signed) {
      get.push(`return (${read(p)} << ${32 - p.shift - w}) >> ${32 - w};`);
    } else {
      const v = partValue(p, read(p));
      get.push(isBool ? `return ${v} !== 0;` : `return ${v};`);
    }
    const value = isBool ? '(v ? 1 : 0)' : 'v';
    if (w === 32) set.push(write(p, value));
    else {
      const clear = hex(~(mask(w) * 2 ** p.shift) >>> 0);
      set.push(write(p, `(${read(p)} & ${clear}) | ((${value} & ${hex(mask(w))}) << ${p.shift})`));
    }
  } else if (!big) {
    const terms = parts.map((p) =>
      p.at === 0 ? partValue(p, read(p)) : `${partValue(p, read(p))} * ${2 ** p.at}`,
    );
    if (signed) {
      get.push(`const u = ${terms.join(' + ')};`, `return u >= ${2 ** (w - 1)} ? u - ${2 ** w} : u;`);
    } else get.push(`return ${terms.join(' + ')};`);
    set.push(`const u = v < 0 ? v + ${2 ** w} : v;`);
    for (const p of parts) {
      const piece = p.at === 0 ? `(u % ${2 ** p.bits})` : `(Math.floor(u / ${2 ** p.at}) % ${2 ** p.bits})`;
      const clear = hex(~(mask(p.bits) * 2 ** p.shift) >>> 0);
      set.push(write(p, p.bits === 32 ? piece : `(${read(p)} & ${clear}) | (${piece} << ${p.shift})`));
    }
  } else {
    const terms = parts.map((p) =>
      p.at === 0 ? `BigInt(${partValue(p, read(p))})` : `(BigInt(${partValue(p, read(p))}) << ${p.at}n)`,
    );
    get.push(`const u = ${terms.join(' | ')};`, signed ? `return BigInt.asIntN(${w}, u);` : 'return u;');
    set.push(`const u = BigInt.asUintN(${w}, v);`);
    for (const p of parts) {
      const piece = `Number((u >> ${p.at}n) & ${hex(mask(p.bits))}n)`;
      const clear = hex(~(mask(p.bits) * 2 ** p.shift) >>> 0);
      set.push(write(p, p.bits === 32 ? piece : `(${read(p)} & ${clear}) | (${piece} << ${p.shift})`));
    }
  }
  out.push(`export function ${getName}(m: LayoutViews, p: number${idx}): ${tsType} {`);
  for (const line of get) out.push(`  ${line}`);
  out.push('}');
  out.push(`export function ${setName}(m: LayoutViews, p: number${idx}, v: ${tsType}): void {`);
  for (const line of set) out.push(`  ${line}`);
  out.push('}');
}

/** `__int128` as a bigint: two little-endian 64-bit halves (typed view when 8-aligned, else DataView). */
function emitInt128Accessors(
  out: string[],
  claim: (name: string, path: string) => void,
  prefix: string,
  suffix: string,
  path: string,
  f: FlatMember,
  signed: boolean,
  bigEndian: boolean,
): void {
  const getName = `${prefix}get_${suffix}`;
  const setName = `${prefix}set_${suffix}`;
  claim(getName, path);
  claim(setName, path);
  const idx = f.indices.map((_, n) => `, ${indexName(n)}: number`).join('');
  // The low half comes second on a big-endian target.
  const lo = bigEndian ? addressExpr(f, 8) : addressExpr(f);
  const hi = bigEndian ? addressExpr(f) : addressExpr(f, 8);
  const le = bigEndian ? 'false' : 'true';
  const get: string[] = [];
  const set: string[] = [];
  if (f.guaranteedAlign >= 8 && !bigEndian) {
    get.push(`const w = ${typedIndex(lo, 8)};`, 'const u = m.u64[w]! | (m.u64[w + 1]! << 64n);');
    set.push(`const w = ${typedIndex(lo, 8)};`, 'm.u64[w] = v;', 'm.u64[w + 1] = v >> 64n;');
  } else {
    get.push(`const u = m.dv.getBigUint64(${lo}, ${le}) | (m.dv.getBigUint64(${hi}, ${le}) << 64n);`);
    set.push(
      `m.dv.setBigUint64(${lo}, BigInt.asUintN(64, v), ${le});`,
      `m.dv.setBigUint64(${hi}, BigInt.asUintN(64, v >> 64n), ${le});`,
    );
  }
  get.push(signed ? 'return BigInt.asIntN(128, u);' : 'return u;');
  out.push(`export function ${getName}(m: LayoutViews, p: number${idx}): bigint {`);
  for (const line of get) out.push(`  ${line}`);
  out.push('}');
  out.push(`export function ${setName}(m: LayoutViews, p: number${idx}, v: bigint): void {`);
  for (const line of set) out.push(`  ${line}`);
  out.push('}');
}
