/**
 * The pure heart of the compiler: description + target → computed layout. No I/O, no emitter concerns.
 *
 * Rules (C11 on the System V / AAPCS / MSVC ABIs, checked against real compilers by the property test):
 *   member alignment  = (packed ? 1 : alignment of its type) ⌈ field `align` attribute
 *   member offset     = previous end rounded up to member alignment (0 for every union member)
 *   record alignment  = max(member alignments, record `align` attribute)
 *   record size       = end of last member (largest member for unions) rounded up to record alignment
 * and, on `packing: 'msvc'` targets, the untagged records declared inside a packed record are packed too.
 *
 * Every check on names and shapes lives here too, so every entry point (DSL, JSON, CLI) gets the same errors.
 */
import type { Target } from './abi';
import { LayoutError } from './errors';
import type { EnumType, NamedType, OpaqueType, RecordType, ScalarType, Type } from './types';

/** A type with typedefs and arrays peeled off: what a member holds, element by element. */
export type ElementType =
  | ScalarType
  | EnumType
  | RecordType
  | { readonly kind: 'pointer'; readonly to: unknown };

export interface MemberLayout {
  readonly kind: 'field' | 'pad' | 'anonymous';
  /** The C name (for anonymous members, the key used in messages only). */
  readonly name: string;
  /** Offset from the start of the enclosing record. */
  readonly offset: number;
  readonly size: number;
  /** Alignment this member got in its record (after packing and attributes). */
  readonly align: number;
  /** The declared type (undefined for padding and anonymous members). */
  readonly type: Type | undefined;
  /** The field `align` attribute, if any. */
  readonly fieldAlign: number | undefined;
  /** Array dimensions of the declared type, typedefs resolved ([] for a non-array). */
  readonly dims: readonly number[];
  /** What each array element (or the member itself) is; for padding, uint8. */
  readonly element: ElementType;
  /** Size of one element. */
  readonly elementSize: number;
  /** Layout of the record held (anonymous member, record field, array of records). */
  readonly record: RecordLayout | undefined;
}

export interface RecordLayout {
  readonly record: RecordType;
  /** Dotted path for messages. */
  readonly path: string;
  readonly size: number;
  readonly align: number;
  /** Whether members were packed (the record's own attribute, or inherited on MSVC). */
  readonly packed: boolean;
  /**
   * Alignment demanded by `align` attributes on the record, its fields or the records it holds. MSVC keeps
   * it even under `#pragma pack(1)` (GCC's packed does not).
   */
  readonly requiredAlign: number;
  readonly members: readonly MemberLayout[];
}

export interface Layout {
  readonly target: Target;
  /** Every named declaration reachable from the description, dependencies first. */
  readonly declarations: readonly NamedType[];
  /** Layouts of the named records, in declaration order. */
  readonly records: ReadonlyMap<RecordType, RecordLayout>;
}

/** One leaf or intermediate member of a named record, with its absolute offset and the arrays on its path. */
export interface FlatMember {
  /** C member designator parts (anonymous members contribute none). */
  readonly path: readonly string[];
  /** Number of array dimensions of each element of `path`. */
  readonly pathDims: readonly number[];
  readonly member: MemberLayout;
  /** Offset of the member (of element 0 of every array on the path) from the start of the outer record. */
  readonly offset: number;
  /** Arrays on the path to this member, outermost first: each dimension with its byte stride. */
  readonly indices: readonly { readonly length: number; readonly stride: number }[];
  /** Alignment guaranteed for the member's address when the outer record is at an address aligned to it. */
  readonly guaranteedAlign: number;
}

const C_KEYWORDS = new Set(
  (
    'auto break case char const continue default do double else enum extern float for goto if inline int long ' +
    'register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while ' +
    '_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local ' +
    // C++ keywords and C23 spellings: the header also compiles as C++17.
    'alignas alignof and and_eq asm bitand bitor bool catch char16_t char32_t char8_t class compl concept ' +
    'const_cast consteval constexpr constinit co_await co_return co_yield decltype delete dynamic_cast explicit ' +
    'export false friend mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected ' +
    'public reinterpret_cast requires static_assert static_cast template this thread_local throw true try ' +
    'typeid typename using virtual wchar_t xor xor_eq ' +
    // Names the header itself uses.
    'int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t ptrdiff_t intptr_t uintptr_t offsetof'
  ).split(' '),
);

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Macros the header's own includes (<stdint.h>, <stddef.h>, <stdbool.h>) or the compilers define, which a
 * declaration of the same name would be rewritten by: NULL, offsetof, the limits and constant macros of
 * <stdint.h>, the PYM_LAYOUT_ macros, and the unprefixed system names GNU C predefines (`linux`, `unix`, `i386`).
 */
const C_MACROS = new Set(
  (
    'NULL offsetof SIZE_MAX PTRDIFF_MIN PTRDIFF_MAX SIG_ATOMIC_MIN SIG_ATOMIC_MAX WCHAR_MIN WCHAR_MAX WINT_MIN ' +
    'WINT_MAX INTPTR_MIN INTPTR_MAX UINTPTR_MAX INTMAX_MIN INTMAX_MAX UINTMAX_MAX INTMAX_C UINTMAX_C linux unix i386'
  ).split(' '),
);
const C_MACRO_PATTERNS = [
  /^U?INT(_LEAST|_FAST)?(8|16|32|64)_(MIN|MAX)$/,
  /^U?INT(8|16|32|64)_C$/,
  /^PYM_LAYOUT_/,
  // Reserved for the implementation in every scope (C11 7.1.3): __x86_64__, _Pragma, __func__, _Bool.
  /^(__|_[A-Z])/,
];

/** Throws unless `name` can be a C (and C++) identifier. */
export function checkIdentifier(name: unknown, path: string, what: string): asserts name is string {
  if (typeof name !== 'string' || !IDENT.test(name)) {
    throw new LayoutError(path, `${what} ${JSON.stringify(name)} is not a valid C identifier`);
  }
  if (C_KEYWORDS.has(name))
    throw new LayoutError(path, `${what} '${name}' is a C/C++ keyword or reserved name`);
  if (C_MACROS.has(name) || C_MACRO_PATTERNS.some((re) => re.test(name)))
    throw new LayoutError(
      path,
      `${what} '${name}' is a macro of the C headers or compilers, or an identifier reserved for them`,
    );
}

/**
 * How deep records, arrays and typedefs may nest by value (a named record held by value counts too). C11
 * guarantees 63 levels of nested struct declarations; the walks here are recursive, so a documented limit
 * replaces a stack overflow. Pointers do not nest: a chain of records linked by pointers has no limit.
 */
export const MAX_NESTING = 64;

function tooDeep(path: string): LayoutError {
  return new LayoutError(
    path,
    `types are nested more than ${MAX_NESTING} levels deep by value (the compiler's documented limit)`,
  );
}

/**
 * The largest object a target's compilers accept (PTRDIFF_MAX: gcc refuses larger ones, clang too on 64-bit
 * targets), and never more than a JavaScript number holds exactly (2^53 - 1).
 */
export function maxObjectSize(target: Target): number {
  return Math.min(2 ** (target.pointerSize * 8 - 1) - 1, Number.MAX_SAFE_INTEGER);
}

function checkAlign(value: unknown, path: string): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 1 ||
    value > 1 << 16 ||
    (value & (value - 1)) !== 0
  ) {
    throw new LayoutError(path, `alignment ${String(value)} is not a power of two between 1 and 65536`);
  }
  return value;
}

const roundUp = (n: number, a: number): number => Math.ceil(n / a) * a;

const TYPE_KINDS = new Set(['scalar', 'pointer', 'array', 'struct', 'union', 'typedef', 'enum', 'opaque']);

function checkType(type: unknown, path: string): asserts type is Type {
  const kind = typeof type === 'object' && type !== null ? (type as { kind?: unknown }).kind : undefined;
  if (typeof kind !== 'string' || !TYPE_KINDS.has(kind)) {
    const shown = kind === 'void' ? 'void (only valid behind a pointer)' : describe(type);
    throw new LayoutError(path, `unknown type ${shown}`);
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value)?.slice(0, 60) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Integer range of an enum's underlying type on a target. */
function integerRange(s: ScalarType, target: Target): [bigint, bigint] {
  const bits = BigInt(target.scalars[s.name][0] * 8);
  const unsigned =
    /^(uint|uchar|ushort|ulong|ulonglong|size_t|uintptr_t|bool)/.test(s.name) ||
    (s.name === 'char' && !target.charSigned);
  return unsigned ? [0n, (1n << bits) - 1n] : [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n];
}

/** Computes the layout of every declaration reachable from `roots` on `target`. */
export function computeLayout(roots: readonly NamedType[], target: Target): Layout {
  const declarations: NamedType[] = [];
  const state = new Map<NamedType, 'visiting' | 'done'>();
  const deferred: { type: NamedType; path: string }[] = [];
  const records = new Map<RecordType, RecordLayout>();
  const byName = new Map<string, NamedType>();
  const ordinaryNames = new Map<string, string>();
  const maxSize = maxObjectSize(target);
  const depths = new Map<RecordLayout, number>();
  const tooLarge = (path: string, size: number): LayoutError =>
    new LayoutError(
      path,
      `too large: ${size > Number.MAX_SAFE_INTEGER ? 'more than 2^53' : size} bytes, and the largest object on ${target.name} is ${maxSize} bytes`,
    );

  const claimName = (name: string, decl: NamedType, path: string): void => {
    const prior = byName.get(name);
    if (prior === undefined) {
      byName.set(name, decl);
      return;
    }
    if (prior === decl) return;
    const forwardDecl = (a: NamedType, b: NamedType) =>
      a.kind === 'opaque' &&
      (b.kind === 'opaque' || b.kind === a.tag) &&
      (b.kind !== 'opaque' || b.tag === a.tag);
    if (forwardDecl(prior, decl) || forwardDecl(decl, prior)) {
      if (decl.kind !== 'opaque') byName.set(name, decl);
      return;
    }
    throw new LayoutError(path, `'${name}' is declared twice (as ${prior.kind} and as ${decl.kind})`);
  };

  const visitNamed = (decl: NamedType, path: string, depth: number): void => {
    if (depth > MAX_NESTING) throw tooDeep(path);
    const s = state.get(decl);
    if (s === 'done') return;
    if (s === 'visiting') throw new LayoutError(path, `'${decl.name}' contains itself by value`);
    state.set(decl, 'visiting');
    checkIdentifier(decl.name, path, `${decl.kind} name`);
    claimName(decl.name, decl, path);
    const here = decl.name;
    switch (decl.kind) {
      case 'struct':
      case 'union':
        walkRecord(decl, here, depth);
        records.set(decl, layoutRecord(decl, here, false));
        break;
      case 'typedef':
        checkType(decl.type, here);
        {
          // Also through arrays: `typedef struct { ... } tarr[3];` has no tag to name in the asserts.
          let of: Type = decl.type;
          while (of.kind === 'array' && typeof of.element === 'object' && of.element !== null)
            of = of.element;
          if ((of.kind === 'struct' || of.kind === 'union') && of.name === undefined) {
            throw new LayoutError(
              here,
              `a typedef of an untagged ${of.kind}${of === decl.type ? '' : ' (or an array of one)'} is not supported; give it a tag`,
            );
          }
        }
        walkType(decl.type, here, depth + 1);
        sizeAlign(decl.type, here, false);
        break;
      case 'enum':
        checkEnum(decl, here);
        break;
      case 'opaque':
        if (decl.tag !== 'struct' && decl.tag !== 'union')
          throw new LayoutError(here, 'opaque tag must be struct or union');
        break;
    }
    state.set(decl, 'done');
    declarations.push(decl);
  };

  const checkEnum = (decl: EnumType, path: string): void => {
    const u = decl.underlying as unknown;
    checkType(u, `${path}.underlying`);
    if (decl.underlying.kind !== 'scalar' || /^(float|bool)/.test(decl.underlying.name)) {
      throw new LayoutError(`${path}.underlying`, 'the underlying type of an enum must be an integer scalar');
    }
    if (decl.members.length === 0) throw new LayoutError(path, 'enum has no members');
    const [lo, hi] = integerRange(decl.underlying, target);
    for (const [name, value] of decl.members) {
      const mpath = `${path}.${name}`;
      checkIdentifier(name, mpath, 'enum member');
      const prior = ordinaryNames.get(name);
      if (prior !== undefined)
        throw new LayoutError(mpath, `enum member '${name}' is already declared at ${prior}`);
      ordinaryNames.set(name, mpath);
      if (!Number.isSafeInteger(value) || BigInt(value) < lo || BigInt(value) > hi) {
        throw new LayoutError(
          mpath,
          /^u?int(8|16|32|64)$/.test(decl.underlying.name)
            ? `value ${String(value)} does not fit in ${decl.underlying.name}`
            : `value ${String(value)} does not fit in ${decl.underlying.name} on ${target.name} (${lo}..${hi})`,
        );
      }
    }
  };

  const walkType = (type: Type, path: string, depth: number): void => {
    if (depth > MAX_NESTING) throw tooDeep(path);
    switch (type.kind) {
      case 'scalar':
        if (!(type.name in target.scalars))
          throw new LayoutError(path, `unknown type '${String(type.name)}'`);
        return;
      case 'pointer': {
        const to = type.to as unknown;
        if (typeof to === 'object' && to !== null && (to as { kind?: unknown }).kind === 'void') return;
        checkType(to, path);
        if (to.kind === 'array')
          throw new LayoutError(path, 'a pointer to an array is not supported; point to a typedef of it');
        if ((to.kind === 'struct' || to.kind === 'union') && to.name === undefined) {
          throw new LayoutError(
            path,
            'a pointer to an untagged struct or union is not supported; give it a tag',
          );
        }
        // A pointer needs only a forward declaration of a record; typedefs and enums must come first.
        if (to.kind === 'struct' || to.kind === 'union' || to.kind === 'opaque')
          deferred.push({ type: to, path });
        else walkType(to, path, depth + 1);
        return;
      }
      case 'array':
        if (!Array.isArray(type.dims) || type.dims.length === 0)
          throw new LayoutError(path, 'array has no dimensions');
        for (const n of type.dims) {
          if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
            throw new LayoutError(path, `array length ${describe(n)} is not a positive integer`);
          }
        }
        checkType(type.element, path);
        walkType(type.element, path, depth);
        return;
      case 'struct':
      case 'union':
        if (type.name === undefined) walkRecord(type, path, depth);
        else visitNamed(type, path, depth);
        return;
      case 'typedef':
      case 'enum':
        visitNamed(type, path, depth);
        return;
      case 'opaque':
        throw new LayoutError(path, `'${type.name}' is an incomplete type; use it behind a pointer`);
    }
  };

  const walkRecord = (rec: RecordType, path: string, depth: number): void => {
    if (depth > MAX_NESTING) throw tooDeep(path);
    if (rec.kind !== 'struct' && rec.kind !== 'union') throw new LayoutError(path, 'not a struct or union');
    if (!Array.isArray(rec.fields) || rec.fields.length === 0)
      throw new LayoutError(path, `empty ${rec.kind}`);
    if (rec.align !== undefined) checkAlign(rec.align, `${path} (align)`);
    const seen = new Map<string, string>();
    const claim = (name: string, fpath: string) => {
      if (seen.has(name)) throw new LayoutError(fpath, `duplicate field '${name}'`);
      seen.set(name, fpath);
    };
    const collect = (r: RecordType, prefix: string, level: number) => {
      if (level > MAX_NESTING) throw tooDeep(prefix);
      for (const f of r.fields) {
        if (f.kind === 'anonymous') {
          const apath = `${prefix}.${f.key}`;
          const inner = f.record as unknown;
          checkType(inner, apath);
          if ((f.record.kind !== 'struct' && f.record.kind !== 'union') || f.record.name !== undefined) {
            throw new LayoutError(apath, 'an anonymous member must be an untagged struct or union');
          }
          if (!Array.isArray(f.record.fields) || f.record.fields.length === 0)
            throw new LayoutError(apath, `empty ${f.record.kind}`);
          collect(f.record, apath, level + 1);
        } else {
          const fpath = `${prefix}.${f.name}`;
          checkIdentifier(f.name, fpath, 'field name');
          claim(f.name, fpath);
        }
      }
    };
    collect(rec, path, depth);
    for (const f of rec.fields) {
      if (f.kind === 'anonymous') {
        walkRecord(f.record, `${path}.${f.key}`, depth + 1);
      } else if (f.kind === 'pad') {
        if (!Number.isSafeInteger(f.size) || f.size < 1) {
          throw new LayoutError(
            `${path}.${f.name}`,
            `padding size ${describe(f.size)} is not a positive integer`,
          );
        }
      } else {
        const fpath = `${path}.${f.name}`;
        checkType(f.type, fpath);
        if (f.align !== undefined) checkAlign(f.align, `${fpath} (align)`);
        walkType(f.type, fpath, depth + 1);
      }
    }
  };

  const sizeAlign = (
    type: Type,
    path: string,
    packedContext: boolean,
  ): { size: number; align: number; record?: RecordLayout } => {
    switch (type.kind) {
      case 'scalar': {
        const [size, align] = target.scalars[type.name];
        return { size, align };
      }
      case 'pointer':
        return { size: target.pointerSize, align: target.pointerSize };
      case 'array': {
        const inner = sizeAlign(type.element, path, packedContext);
        const size = type.dims.reduce((a, b) => a * b, inner.size);
        if (size > maxSize) throw tooLarge(path, size);
        return {
          size,
          align: inner.align,
          record: inner.record,
        };
      }
      case 'typedef':
        return sizeAlign(type.type, path, false);
      case 'enum':
        return sizeAlign(type.underlying, path, false);
      case 'struct':
      case 'union': {
        const rl = type.name === undefined ? layoutRecord(type, path, packedContext) : records.get(type);
        if (!rl) throw new LayoutError(path, `internal: '${type.name}' has no layout yet`);
        return { size: rl.size, align: rl.align, record: rl };
      }
      case 'opaque':
        throw new LayoutError(path, `'${type.name}' is an incomplete type; use it behind a pointer`);
    }
  };

  const peel = (type: Type): { dims: number[]; element: ElementType } => {
    const dims: number[] = [];
    let cur: Type = type;
    for (;;) {
      if (cur.kind === 'typedef') cur = cur.type;
      else if (cur.kind === 'array') {
        dims.push(...cur.dims);
        cur = cur.element;
      } else if (cur.kind === 'opaque') throw new LayoutError('', 'unreachable: opaque by value');
      else return { dims, element: cur };
    }
  };

  // MSVC (clang's MicrosoftRecordLayoutBuilder): a member whose record type carries an alignment attribute
  // demands that type's whole alignment, one that merely contains such members demands theirs; pack(1) cannot
  // lower either.
  const demanded = (rl: RecordLayout): number =>
    rl.record.align !== undefined ? rl.align : rl.requiredAlign;

  const layoutRecord = (rec: RecordType, path: string, inheritedPack: boolean): RecordLayout => {
    const packed = rec.packed || (target.packing === 'msvc' && inheritedPack);
    const members: MemberLayout[] = [];
    let end = 0;
    let maxAlign = 1;
    let required = rec.align ?? 1;
    const msvc = target.packing === 'msvc';
    const place = (size: number, align: number): number => {
      const offset = rec.kind === 'union' ? 0 : roundUp(end, align);
      end = rec.kind === 'union' ? Math.max(end, size) : offset + size;
      maxAlign = Math.max(maxAlign, align);
      return offset;
    };
    for (const f of rec.fields) {
      if (f.kind === 'pad') {
        const offset = place(f.size, 1);
        const element = { kind: 'scalar', name: 'uint8' } as const;
        members.push({
          kind: 'pad',
          name: f.name,
          offset,
          size: f.size,
          align: 1,
          type: undefined,
          fieldAlign: undefined,
          dims: [f.size],
          element,
          elementSize: 1,
          record: undefined,
        });
      } else if (f.kind === 'anonymous') {
        const inner = layoutRecord(f.record, `${path}.${f.key}`, packed);
        const req = demanded(inner);
        required = Math.max(required, req);
        const align = packed ? (msvc ? req : 1) : inner.align;
        const offset = place(inner.size, align);
        members.push({
          kind: 'anonymous',
          name: f.key,
          offset,
          size: inner.size,
          align,
          type: undefined,
          fieldAlign: undefined,
          dims: [],
          element: f.record,
          elementSize: inner.size,
          record: inner,
        });
      } else {
        const fpath = `${path}.${f.name}`;
        const info = sizeAlign(f.type, fpath, packed);
        if (f.align !== undefined && f.align < info.align) {
          throw new LayoutError(
            fpath,
            `alignment ${f.align} is less than the natural alignment ${info.align} of the type`,
          );
        }
        const req = Math.max(f.align ?? 1, info.record ? demanded(info.record) : 1);
        required = Math.max(required, req);
        const align = Math.max(packed ? (msvc ? req : 1) : info.align, f.align ?? 1);
        const offset = place(info.size, align);
        const { dims, element } = peel(f.type);
        const count = dims.reduce((a, b) => a * b, 1);
        members.push({
          kind: 'field',
          name: f.name,
          offset,
          size: info.size,
          align,
          type: f.type,
          fieldAlign: f.align,
          dims,
          element,
          elementSize: info.size / count,
          record: info.record,
        });
      }
    }
    const align = Math.max(maxAlign, rec.align ?? 1);
    const size = roundUp(end, align);
    if (size > maxSize) throw tooLarge(path, size);
    // Nesting by value, through named records too (the walks above count only what one visit recursed into).
    const depth = 1 + Math.max(0, ...members.map((m) => (m.record ? (depths.get(m.record) ?? 0) : 0)));
    if (depth > MAX_NESTING) throw tooDeep(path);
    const rl: RecordLayout = { record: rec, path, size, align, packed, requiredAlign: required, members };
    depths.set(rl, depth);
    return rl;
  };

  for (const root of roots) {
    const name = isObj(root) ? (root as { name?: unknown }).name : undefined;
    const where = typeof name === 'string' ? name : describe(root);
    checkType(root, where);
    if (
      root.kind !== 'struct' &&
      root.kind !== 'union' &&
      root.kind !== 'typedef' &&
      root.kind !== 'enum' &&
      root.kind !== 'opaque'
    ) {
      throw new LayoutError(
        where,
        `only structs, unions, typedefs, enums and opaque types can be declared, not a ${root.kind}`,
      );
    }
    if (root.name === undefined) throw new LayoutError(where, `a declared ${root.kind} needs a name`);
    visitNamed(root, root.name, 0);
  }
  while (deferred.length > 0) {
    const { type, path } = deferred.shift()!;
    if (type.kind === 'struct' || type.kind === 'union') visitNamed(type, path, 0);
    else if (!state.has(type)) visitNamed(type, path, 0);
  }
  return { target, declarations, records };
}

function isObj(v: unknown): boolean {
  return typeof v === 'object' && v !== null;
}

/** The opaque declarations that no record of the same tag completes (they need a `struct x;` of their own). */
export function isCompleted(layout: Layout, decl: OpaqueType): boolean {
  for (const d of layout.declarations) if (d.kind === decl.tag && d.name === decl.name) return true;
  return false;
}

/**
 * Every member of a named record reachable by `.` and `[i]`, parents before children, in declaration order.
 * With `intoNamed: false` the members of a named record held by value are left out (it has its own entries),
 * so that the count stays linear in the nesting depth.
 */
export function flattenRecord(
  rl: RecordLayout,
  options: { readonly intoNamed?: boolean } = {},
): FlatMember[] {
  const intoNamed = options.intoNamed ?? true;
  const out: FlatMember[] = [];
  const walk = (
    r: RecordLayout,
    base: number,
    path: string[],
    pathDims: number[],
    indices: FlatMember['indices'],
    guaranteed: number,
  ) => {
    for (const m of r.members) {
      if (m.kind === 'pad') continue;
      const offset = base + m.offset;
      if (m.kind === 'anonymous') {
        walk(m.record!, offset, path, pathDims, indices, guaranteed);
        continue;
      }
      const p = [...path, m.name];
      const pd = [...pathDims, m.dims.length];
      const dimIndices = [...indices];
      let stride = m.elementSize;
      const strides: number[] = [];
      for (let i = m.dims.length - 1; i >= 0; i--) {
        strides.unshift(stride);
        stride *= m.dims[i]!;
      }
      m.dims.forEach((length, i) => {
        dimIndices.push({ length, stride: strides[i]! });
      });
      const g = Math.min(guaranteed, lowBit(offset), ...dimIndices.map((x) => lowBit(x.stride)));
      out.push({ path: p, pathDims: pd, member: m, offset, indices: dimIndices, guaranteedAlign: g });
      if (m.record && (intoNamed || m.record.record.name === undefined))
        walk(m.record, offset, p, pd, dimIndices, guaranteed);
    }
  };
  walk(rl, 0, [], [], [], rl.align);
  return out;
}

function lowBit(n: number): number {
  if (n === 0) return 1 << 30;
  let b = 1;
  while (n % (b * 2) === 0) b *= 2;
  return b;
}

/** Convenience for callers holding a single declaration. */
export function layoutOf(decl: RecordType, target: Target): RecordLayout {
  const l = computeLayout([decl], target);
  return l.records.get(decl)!;
}
