/**
 * The pure heart of the compiler: description + target → computed layout. No I/O, no emitter concerns.
 *
 * Rules (C11 on the System V / AAPCS / MSVC ABIs, checked against real compilers by the property test):
 *   member alignment  = (packed ? 1 : alignment of its type) ⌈ field `align` attribute
 *   member offset     = previous end rounded up to member alignment (0 for every union member)
 *   record alignment  = max(member alignments, record `align` attribute)
 *   record size       = end of last member (largest member for unions) rounded up to record alignment
 * and, on `packing: 'msvc'` targets, the untagged records declared inside a packed record are packed too.
 * `pack(N)` caps member alignments at N (gcc/clang: also a field's `align`; MSVC: not) and, like the pragma,
 * applies to the untagged records inside. Bitfields follow the target's `bitfields` rule (codegen/abi.ts:
 * System V, MSVC, or mingw's ms_struct, each checked against clang's record layouts, and ms_struct against GCC
 * for mingw too, which lays three shapes out otherwise: those are refused, see refuseMsStruct);
 * a flexible array member adds its alignment but no size. Members and records with `targets` exist only on
 * those targets; `packedOn` packs a record on some targets only.
 *
 * Every check on names and shapes lives here too, so every entry point (DSL, JSON, CLI) gets the same errors.
 */
import { TARGET_NAMES, type Target } from './abi';
import { LayoutError, UnmodelledError } from './errors';
import type {
  EnumType,
  Field,
  FunctionType,
  NamedType,
  OpaqueType,
  RecordType,
  ScalarType,
  Type,
} from './types';

/** A type with typedefs and arrays peeled off: what a member holds, element by element. */
export type ElementType =
  | ScalarType
  | EnumType
  | RecordType
  | { readonly kind: 'pointer'; readonly to: unknown };

/** Where a bitfield's bits are: relative to the start of the record that declares it. */
export interface BitfieldLayout {
  /** Offset of the first bit from the record's start (little-endian bit numbering: bit b is in byte b >> 3). */
  readonly bitOffset: number;
  readonly width: number;
  /** Size of the declared type (its storage unit). */
  readonly unitSize: number;
  /** An unnamed bitfield: no accessor, no C name. */
  readonly unnamed: boolean;
  /** Whether the declared type is signed (reads sign-extend). */
  readonly signed: boolean;
}

export interface MemberLayout {
  readonly kind: 'field' | 'pad' | 'anonymous';
  /** The description's member this lays out. */
  readonly source: Field;
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
  /** For a bitfield: where its bits are (offset and size then cover the bytes it touches). */
  readonly bitfield?: BitfieldLayout | undefined;
  /** A flexible array member: size 0, `dims` are its element's. */
  readonly flexible?: boolean | undefined;
}

export interface RecordLayout {
  readonly record: RecordType;
  /** Dotted path for messages. */
  readonly path: string;
  readonly size: number;
  readonly align: number;
  /** Whether members were packed (the record's own attribute, or inherited on MSVC). */
  readonly packed: boolean;
  /** `#pragma pack(N)` in effect (the record's own, or inherited from the record it is declared in). */
  readonly pack: number | undefined;
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
  /** For a bitfield: the offset (from the outer record) and size of the record that declares it. */
  readonly container?: { readonly offset: number; readonly size: number } | undefined;
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

const TYPE_KINDS = new Set([
  'scalar',
  'pointer',
  'array',
  'struct',
  'union',
  'typedef',
  'enum',
  'opaque',
  'qualified',
]);

const KNOWN_TARGETS = new Set<string>(TARGET_NAMES);

/** Checks a `targets`/`packedOn` list: target names the compiler models. */
function checkTargetList(list: unknown, path: string): readonly string[] {
  if (!Array.isArray(list) || list.length === 0)
    throw new LayoutError(path, `expected a non-empty list of target names, got ${describe(list)}`);
  for (const n of list) {
    if (typeof n !== 'string' || !KNOWN_TARGETS.has(n))
      throw new LayoutError(path, `unknown target ${describe(n)} (known: ${TARGET_NAMES.join(', ')})`);
  }
  return list as readonly string[];
}

/** True when a member or record with this `targets` list exists on `target`. */
export function presentOn(targets: readonly string[] | undefined, target: Target): boolean {
  return targets === undefined || targets.includes(target.name);
}

/** Peels typedefs and qualifiers: the type that decides layout. */
export function unqualified(type: Type): Type {
  let cur = type;
  while (cur && (cur.kind === 'qualified' || cur.kind === 'typedef'))
    cur = cur.kind === 'qualified' ? cur.type : cur.type;
  return cur;
}

const UNSIGNED_SCALAR = /^(uint|uchar|ushort|ulong|ulonglong|size_t|uintptr_t|bool)/;

/** Whether an integer scalar is signed on `target`. */
export function isSignedScalar(name: string, target: Target): boolean {
  if (UNSIGNED_SCALAR.test(name)) return false;
  if (name === 'char') return target.charSigned;
  if (name === 'wchar') return target.wcharSigned;
  return true;
}

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
  const unsigned = !isSignedScalar(s.name, target);
  return unsigned ? [0n, (1n << bits) - 1n] : [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n];
}

/** Packing a record inherits from the record it is declared in. */
interface Inherited {
  readonly packed: boolean;
  readonly pack: number | undefined;
}
const NOT_INHERITED: Inherited = { packed: false, pack: undefined };

/**
 * The ms_struct shapes (mingw, x86_64-windows-gnu) whose rules differ between GCC for mingw and clang: refused
 * rather than laid out one compiler's way, since a header must hold for both. Measured with
 * x86_64-w64-mingw32-gcc 12 and clang 14 (test/codegen/mingw-gcc.test.ts shows each with both compilers):
 * - a bitfield of a type wider than a byte in a packed record (a zero-width one too, unless it follows a
 *   non-bitfield, which both ignore): GCC starts its unit at the next byte with no alignment, clang at the
 *   next multiple of its type's size (clang 23 changes to GCC's way);
 * - a bitfield of a type wider than a byte, not zero-width, in a union: GCC gives the union the type's
 *   alignment, clang none;
 * - a zero-width bitfield right after a bitfield under pack(N), N below its type's size: GCC aligns it to N,
 *   clang to its type's size.
 * With a one-byte type the two agree (the alignment is 1 either way), and so they do for everything else.
 */
function refuseMsStruct(
  memberPath: string,
  target: Target,
  at: {
    readonly width: number;
    readonly packed: boolean;
    readonly union: boolean;
    readonly pack: number | undefined;
    /** The member before is a bitfield, not zero-width (a storage unit is open). */
    readonly afterBitfield: boolean;
    readonly unitSize: number;
  },
): void {
  const wide = at.unitSize > 1;
  const type = `${at.unitSize === 8 ? 'an' : 'a'} ${at.unitSize}-byte type`;
  let shape: string;
  let how: string;
  if (at.packed && wide && (at.width > 0 || at.afterBitfield)) {
    shape = `a bitfield of ${type} in a packed record`;
    how = `GCC starts its unit at the next byte with no alignment, clang at the next multiple of ${at.unitSize}`;
  } else if (at.union && wide && at.width > 0) {
    shape = `a bitfield of ${type} in a union`;
    how = `GCC gives the union the type's alignment, clang gives it none`;
  } else if (
    !at.union &&
    at.width === 0 &&
    at.afterBitfield &&
    at.pack !== undefined &&
    at.pack < at.unitSize
  ) {
    shape = `a zero-width bitfield of ${type} after a bitfield under pack(${at.pack})`;
    how = `GCC aligns it to ${at.pack}, clang to ${at.unitSize}`;
  } else return;
  throw new UnmodelledError(
    memberPath,
    target.name,
    `${shape} is not modelled on ${target.name}: gcc and clang lay it out differently there (${how}); ` +
      'limit the record or member to other targets with "targets"',
  );
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

  const visitNamed = (decl: NamedType, path: string, byValue: boolean): void => {
    if ((decl.kind === 'struct' || decl.kind === 'union') && decl.targets !== undefined) {
      checkTargetList(decl.targets, `${decl.name} (targets)`);
      if (!presentOn(decl.targets, target)) {
        // Absent here: a pointer to it still names an incomplete type; by value it is an error.
        if (byValue)
          throw new LayoutError(path, `'${decl.name}' does not exist on ${target.name} (its "targets")`);
        return;
      }
    }
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
        walkRecord(decl, here);
        records.set(decl, layoutRecord(decl, here, NOT_INHERITED));
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
        if (flexibleOf(decl.type))
          throw new LayoutError(here, 'a typedef of a flexible array is not supported');
        walkType(decl.type, here);
        sizeAlign(decl.type, here, NOT_INHERITED);
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
    if (decl.underlying.kind !== 'scalar' || /^(float|bool|longdouble)/.test(decl.underlying.name)) {
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

  // Inside members absent on this target, types are checked but not against this target's scalars.
  let absentDepth = 0;
  const checkScalar = (name: string, path: string): void => {
    if (!(name in target.scalars)) throw new LayoutError(path, `unknown type '${String(name)}'`);
    if (absentDepth === 0 && target.unsupported.includes(name as ScalarType['name'])) {
      throw new LayoutError(
        path,
        `${name} does not exist on ${target.name}; limit the member to other targets with "targets"`,
      );
    }
  };

  /** What a pointer may point to: a type, void, or a function type. */
  const walkPointee = (to: unknown, path: string): void => {
    if (typeof to === 'object' && to !== null && (to as { kind?: unknown }).kind === 'void') return;
    if (typeof to === 'object' && to !== null && (to as { kind?: unknown }).kind === 'function') {
      walkFunction(to as FunctionType, path);
      return;
    }
    checkType(to, path);
    if (to.kind === 'array')
      throw new LayoutError(path, 'a pointer to an array is not supported; point to a typedef of it');
    const inner = to.kind === 'qualified' ? to.type : to;
    if ((inner.kind === 'struct' || inner.kind === 'union') && inner.name === undefined) {
      throw new LayoutError(path, 'a pointer to an untagged struct or union is not supported; give it a tag');
    }
    // A pointer needs only a forward declaration of a record; typedefs and enums must come first.
    if (inner.kind === 'struct' || inner.kind === 'union' || inner.kind === 'opaque')
      deferred.push({ type: inner, path });
    else walkType(to, path);
  };

  const walkFunction = (f: FunctionType, path: string): void => {
    if (!Array.isArray(f.params)) throw new LayoutError(path, 'a function type needs a list of params');
    walkPointee(f.returns, `${path}.returns`);
    const r = f.returns as unknown as { kind: string };
    if (r.kind === 'array' || r.kind === 'function')
      throw new LayoutError(
        `${path}.returns`,
        `a function cannot return ${r.kind === 'array' ? 'an array' : 'a function'}`,
      );
    f.params.forEach((p, i) => {
      const ppath = `${path}.params[${i}]`;
      const k = (p as unknown as { kind?: unknown }).kind;
      if (k === 'void' || k === 'function' || k === 'array')
        throw new LayoutError(
          ppath,
          `a parameter cannot be ${k === 'array' ? 'an array (use a pointer)' : `a ${String(k)}`}`,
        );
      walkPointee(p, ppath);
    });
  };

  const walkType = (type: Type, path: string): void => {
    switch (type.kind) {
      case 'scalar':
        checkScalar(type.name, path);
        return;
      case 'pointer':
        walkPointee(type.to as unknown, path);
        return;
      case 'qualified':
        checkType(type.type, path);
        if ((type.type.kind === 'struct' || type.type.kind === 'union') && type.type.name === undefined)
          throw new LayoutError(path, 'qualify the members of an untagged struct or union, not the record');
        if (type.type.kind === 'array' && type.type.flexible)
          throw new LayoutError(path, 'qualify the element of a flexible array, not the array');
        walkType(type.type, path);
        return;
      case 'array':
        if (!Array.isArray(type.dims) || (type.dims.length === 0 && !type.flexible))
          throw new LayoutError(path, 'array has no dimensions');
        for (const n of type.dims) {
          if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
            throw new LayoutError(path, `array length ${describe(n)} is not a positive integer`);
          }
        }
        checkType(type.element, path);
        if (type.element.kind === 'array' && type.element.flexible)
          throw new LayoutError(path, 'an array of flexible arrays is not valid C');
        walkType(type.element, path);
        return;
      case 'struct':
      case 'union':
        if (type.name === undefined) walkRecord(type, path);
        else visitNamed(type, path, true);
        return;
      case 'typedef':
      case 'enum':
        visitNamed(type, path, true);
        return;
      case 'opaque':
        throw new LayoutError(path, `'${type.name}' is an incomplete type; use it behind a pointer`);
    }
  };

  /** The flexible array a type is (through typedefs and qualifiers), if any. */
  const flexibleOf = (type: Type): boolean => {
    const u = unqualified(type);
    return u.kind === 'array' && u.flexible === true;
  };

  /** Whether a record (by value) ends in a flexible array member: it cannot be a member or an element. */
  // Bounded by the records already on the way (one containing itself is reported elsewhere) and by the nesting
  // limit (a deeper description fails in the walk), so that it never recurses without end.
  const endsFlexible = (type: Type, seen = new Set<RecordType>(), depth = 0): boolean => {
    if (typeof type !== 'object' || type === null || depth > MAX_NESTING) return false;
    let u = unqualified(type);
    while (u?.kind === 'array') u = unqualified(u.element);
    if (!u || (u.kind !== 'struct' && u.kind !== 'union') || seen.has(u) || !Array.isArray(u.fields))
      return false;
    seen.add(u);
    return u.fields.some(
      (f) =>
        (f.kind === 'field' &&
          typeof f.type === 'object' &&
          f.type !== null &&
          (flexibleOf(f.type) || endsFlexible(f.type, seen, depth + 1))) ||
        (f.kind === 'anonymous' && endsFlexible(f.record, seen, depth + 1)),
    );
  };

  // How many records the walk is inside (by value); bounded so that deep nesting is an error, not a stack overflow.
  let walkDepth = 0;
  const walkRecord = (rec: RecordType, path: string): void => {
    if (walkDepth >= MAX_NESTING) throw tooDeep(path);
    walkDepth++;
    try {
      walkRecordInner(rec, path);
    } finally {
      walkDepth--;
    }
  };

  const walkRecordInner = (rec: RecordType, path: string): void => {
    if (rec.kind !== 'struct' && rec.kind !== 'union') throw new LayoutError(path, 'not a struct or union');
    if (!Array.isArray(rec.fields) || rec.fields.length === 0)
      throw new LayoutError(path, `empty ${rec.kind}`);
    if (rec.align !== undefined) checkAlign(rec.align, `${path} (align)`);
    if (rec.pack !== undefined) {
      checkAlign(rec.pack, `${path} (pack)`);
      if (rec.packed) throw new LayoutError(path, 'a record is either packed or pack(N), not both');
    }
    if (rec.packedOn !== undefined) checkTargetList(rec.packedOn, `${path} (packedOn)`);
    if (rec.targets !== undefined && rec.name === undefined)
      throw new LayoutError(path, 'only a named record can have "targets"; give the member "targets"');
    // Two members may share a name when no target has both (struct stat's st_nlink moves on x86_64).
    const seen = new Map<string, { path: string; targets: readonly string[] | undefined }[]>();
    const claim = (name: string, fpath: string, targets: readonly string[] | undefined) => {
      const prior = seen.get(name) ?? [];
      const clash = prior.some(
        (p) => p.targets === undefined || targets === undefined || p.targets.some((x) => targets.includes(x)),
      );
      if (clash) throw new LayoutError(fpath, `duplicate field '${name}'`);
      seen.set(name, [...prior, { path: fpath, targets }]);
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
          if (f.kind === 'field' && f.unnamed) {
            if (typeof f.name !== 'string') throw new LayoutError(fpath, 'an unnamed bitfield needs a key');
            continue;
          }
          checkIdentifier(f.name, fpath, 'field name');
          claim(f.name, fpath, f.targets);
        }
      }
    };
    collect(rec, path, 0);
    rec.fields.forEach((f, i) => {
      const fpath = `${path}.${f.kind === 'anonymous' ? f.key : f.name}`;
      if (f.targets !== undefined) checkTargetList(f.targets, `${fpath} (targets)`);
      const absent = !presentOn(f.targets, target);
      if (absent) absentDepth++;
      try {
        walkField(rec, f, i, fpath, absent);
      } finally {
        if (absent) absentDepth--;
      }
    });
  };

  const walkField = (rec: RecordType, f: Field, i: number, fpath: string, absent: boolean): void => {
    if (f.kind === 'anonymous') {
      walkRecord(f.record, fpath);
    } else if (f.kind === 'pad') {
      if (!Number.isSafeInteger(f.size) || f.size < 1) {
        throw new LayoutError(fpath, `padding size ${describe(f.size)} is not a positive integer`);
      }
    } else {
      checkType(f.type, fpath);
      if (f.align !== undefined) checkAlign(f.align, `${fpath} (align)`);
      if ((f.bits !== undefined || f.unnamed) && !absent) checkBitfield(f, fpath);
      if (flexibleOf(f.type)) {
        if (rec.kind !== 'struct')
          throw new LayoutError(fpath, 'a flexible array member must be in a struct');
        if (i !== rec.fields.length - 1)
          throw new LayoutError(fpath, 'a flexible array member must be the last member of its struct');
        if (rec.name === undefined)
          throw new LayoutError(
            fpath,
            'a flexible array member must be in a named struct, not an inline one',
          );
        if (
          !rec.fields.some((g) => g !== f && g.kind === 'field' && !g.unnamed && presentOn(g.targets, target))
        )
          throw new LayoutError(fpath, 'a struct with a flexible array member needs another named member');
        if (f.align !== undefined) throw new LayoutError(fpath, 'a flexible array member takes no "align"');
      } else if (endsFlexible(f.type)) {
        throw new LayoutError(
          fpath,
          'a struct ending in a flexible array member cannot be a member or an array element',
        );
      }
      walkType(f.type, fpath);
    }
  };

  const checkBitfield = (f: Field & { kind: 'field' }, path: string): void => {
    const w = f.bits as unknown;
    if (typeof w !== 'number' || !Number.isSafeInteger(w) || w < 0)
      throw new LayoutError(path, `bitfield width ${describe(w)} is not a non-negative integer`);
    const u = unqualified(f.type);
    const scalar = u.kind === 'enum' ? u.underlying : u.kind === 'scalar' ? u : undefined;
    if (!scalar || /^(float|longdouble)/.test(scalar.name))
      throw new LayoutError(path, 'a bitfield must have an integer, bool or enum type');
    checkScalar(scalar.name, path);
    const typeBits = target.scalars[scalar.name][0] * 8;
    const max = scalar.name === 'bool' ? 1 : typeBits;
    if (w > max)
      throw new LayoutError(
        path,
        `bitfield width ${w} exceeds the ${max} bits of ${scalar.name} on ${target.name}`,
      );
    if (w === 0 && !f.unnamed) throw new LayoutError(path, 'a zero-width bitfield must be unnamed');
    if (f.align !== undefined) throw new LayoutError(path, 'a bitfield cannot have an "align"');
  };

  const sizeAlign = (
    type: Type,
    path: string,
    inherited: Inherited,
  ): { size: number; align: number; record?: RecordLayout } => {
    switch (type.kind) {
      case 'scalar': {
        const [size, align] = target.scalars[type.name];
        return { size, align };
      }
      case 'pointer':
        return { size: target.pointerSize, align: target.pointerSize };
      case 'qualified':
        return sizeAlign(type.type, path, inherited);
      case 'array': {
        const inner = sizeAlign(type.element, path, inherited);
        const size = type.dims.reduce((a, b) => a * b, inner.size);
        if (size > maxSize) throw tooLarge(path, size);
        return {
          size,
          align: inner.align,
          record: inner.record,
        };
      }
      case 'typedef':
        return sizeAlign(type.type, path, NOT_INHERITED);
      case 'enum':
        return sizeAlign(type.underlying, path, NOT_INHERITED);
      case 'struct':
      case 'union': {
        const rl = type.name === undefined ? layoutRecord(type, path, inherited) : records.get(type);
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
      if (cur.kind === 'typedef' || cur.kind === 'qualified') cur = cur.type;
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

  const layoutRecord = (rec: RecordType, path: string, inherited: Inherited): RecordLayout => {
    const msvc = target.packing === 'msvc';
    if (!rec.fields.some((f) => presentOn(f.targets, target) && !(f.kind === 'field' && f.unnamed)))
      throw new LayoutError(path, `${rec.kind} has no named member on ${target.name}`);
    // The pragmas nest: on MSVC, packed is pack(1) and replaces (or is replaced by) an enclosing pack(N);
    // with GCC's attribute, packed and an enclosing pack(N) both apply.
    const own = rec.packed || (rec.packedOn?.includes(target.name) ?? false);
    let packed: boolean;
    let pack: number | undefined;
    if (msvc) {
      packed = own || (rec.pack === undefined && inherited.packed);
      pack = own ? undefined : (rec.pack ?? inherited.pack);
    } else {
      packed = own;
      pack = rec.pack ?? inherited.pack;
    }
    const inner: Inherited = { packed, pack };
    const union = rec.kind === 'union';
    const members: MemberLayout[] = [];
    let endBits = 0;
    let maxAlign = 1;
    let required = rec.align ?? 1;
    // MSVC bitfield state: the open storage unit.
    let msLast = false;
    let msUnit = 0;
    let msRemaining = 0;
    // ms_struct state (clang's ItaniumRecordLayoutBuilder with -mms-bitfields): the size in bits of the open
    // storage unit's type (0: none open) and how many of its bits are still free.
    let unitBits = 0;
    let unfilled = 0;
    // ms_struct: whether the member laid out last is a bitfield, not zero-width (the refusals need it).
    let lastBitfield = false;
    // Where the next member may start (`endBits`, clang's data size) can move back on ms_struct (a zero-width
    // bitfield under pack(N), below); the record's size is the furthest it ever reached.
    let sizeBits = 0;
    const endBytes = () => Math.ceil(endBits / 8);
    const place = (size: number, align: number): number => {
      const offset = union ? 0 : roundUp(endBytes(), align);
      endBits = union ? Math.max(endBits, size * 8) : (offset + size) * 8;
      sizeBits = Math.max(sizeBits, endBits);
      maxAlign = Math.max(maxAlign, align);
      msLast = false;
      unitBits = 0;
      unfilled = 0;
      lastBitfield = false;
      return offset;
    };
    /** Alignment of a member whose type aligns to `natural` and demands `req` (MSVC), field attr `fa`. */
    const memberAlign = (natural: number, req: number, fa: number | undefined): number => {
      if (msvc) {
        const base = packed ? 1 : pack !== undefined ? Math.min(natural, pack) : natural;
        return Math.max(base, req, fa ?? 1);
      }
      if (packed) return Math.max(1, fa ?? 1);
      const a = Math.max(natural, fa ?? 1);
      return pack !== undefined ? Math.min(a, pack) : a;
    };
    const u8 = { kind: 'scalar', name: 'uint8' } as const;
    for (const f of rec.fields) {
      if (!presentOn(f.targets, target)) continue;
      if (f.kind === 'pad') {
        const offset = place(f.size, 1);
        members.push({
          kind: 'pad',
          source: f,
          name: f.name,
          offset,
          size: f.size,
          align: 1,
          type: undefined,
          fieldAlign: undefined,
          dims: [f.size],
          element: u8,
          elementSize: 1,
          record: undefined,
        });
      } else if (f.kind === 'anonymous') {
        const il = layoutRecord(f.record, `${path}.${f.key}`, inner);
        const req = demanded(il);
        required = Math.max(required, req);
        const align = memberAlign(il.align, msvc ? req : 1, undefined);
        const offset = place(il.size, align);
        members.push({
          kind: 'anonymous',
          source: f,
          name: f.key,
          offset,
          size: il.size,
          align,
          type: undefined,
          fieldAlign: undefined,
          dims: [],
          element: f.record,
          elementSize: il.size,
          record: il,
        });
      } else if (f.bits !== undefined) {
        const u = unqualified(f.type);
        const scalar = (u.kind === 'enum' ? u.underlying : u) as ScalarType;
        const [unitSize, typeAlign] = target.scalars[scalar.name];
        const w = f.bits;
        let bitOffset: number;
        let align: number;
        if (target.bitfields === 'ms_struct') {
          refuseMsStruct(`${path}.${f.name}`, target, {
            width: w,
            packed,
            union,
            pack,
            afterBitfield: lastBitfield,
            unitSize,
          });
          lastBitfield = w !== 0;
          // GCC's ms_struct (-mms-bitfields, the default for MinGW): MSVC's storage units, under GCC's
          // attributes. The shapes GCC and clang lay out differently are refused first; what follows is
          // clang's rule, which GCC shares for every other shape. A bitfield's alignment is its type's size:
          // `packed` does not lower it, pack(N) caps it except for a zero-width bitfield, and it counts for the
          // record's alignment even when unnamed; in a union it counts for nothing (a bitfield there gives
          // only its unit's size). (ms_struct also aligns every scalar member to its size, which on x86_64 it
          // already is.)
          const typeBits = unitSize * 8;
          let alignBits = typeBits;
          if (unitBits !== typeBits || unfilled < w) {
            // The open unit (if any) is closed. A zero-width bitfield that does not follow a bitfield of
            // any size is ignored (it aligns to one bit: nothing).
            if (unitBits === 0 && w === 0) alignBits = 1;
            unitBits = 0;
            unfilled = 0;
          }
          if (w !== 0 && pack !== undefined) alignBits = Math.min(alignBits, pack * 8);
          if (union) alignBits = 1;
          bitOffset = union ? 0 : endBits - unfilled;
          if (w === 0 || w > unfilled) {
            bitOffset = roundUp(bitOffset, alignBits);
            unfilled = 0;
          }
          if (union) endBits = Math.max(endBits, w === 0 ? 8 : typeBits);
          else if (w !== 0) {
            if (unfilled === 0) {
              endBits = bitOffset + typeBits;
              unfilled = typeBits;
            }
            unfilled -= w;
            unitBits = typeBits;
          } else {
            // A zero-width bitfield ends the unit where it lands, aligned to its type's size: under pack(N)
            // the unit may have started below that boundary, and then what follows starts inside it.
            endBits = roundUp(bitOffset, 8);
            unfilled = 0;
            unitBits = 0;
          }
          sizeBits = Math.max(sizeBits, endBits);
          align = Math.max(1, Math.floor(alignBits / 8));
          maxAlign = Math.max(maxAlign, align);
        } else if (target.bitfields === 'msvc') {
          align = packed ? 1 : pack !== undefined ? Math.min(typeAlign, pack) : typeAlign;
          if (w === 0) {
            if (msLast) {
              msLast = false;
              // In a union, MSVC's bitfields (zero-width ones too) give size but no alignment.
              if (union) endBits = Math.max(endBits, unitSize * 8);
              else {
                endBits = roundUp(endBytes(), align) * 8;
                maxAlign = Math.max(maxAlign, align);
              }
            }
            bitOffset = union ? 0 : endBits;
          } else if (!union && msLast && msUnit === unitSize && w <= msRemaining) {
            bitOffset = endBits - msRemaining;
            msRemaining -= w;
          } else {
            msLast = true;
            msUnit = unitSize;
            if (union) {
              bitOffset = 0;
              endBits = Math.max(endBits, unitSize * 8);
            } else {
              const offset = roundUp(endBytes(), align);
              bitOffset = offset * 8;
              endBits = (offset + unitSize) * 8;
              maxAlign = Math.max(maxAlign, align);
              msRemaining = unitSize * 8 - w;
            }
          }
        } else {
          // gcc and clang agree: the bits go at the next free bit unless, with neither packed nor pack(N),
          // they would straddle a boundary of the type's alignment; a zero-width bitfield aligns to its type
          // regardless. What the record's alignment gets is the type's alignment capped by pack(N) (also when
          // packed: pack(N) wins), 1 when only packed.
          const typeAlignBits = typeAlign * 8;
          const contrib = pack !== undefined ? Math.min(typeAlign, pack) : packed ? 1 : typeAlign;
          const allowPadding = !packed && pack === undefined;
          const start = union ? 0 : endBits;
          if (w === 0) bitOffset = roundUp(start, typeAlignBits);
          else if (allowPadding && (start % typeAlignBits) + w > unitSize * 8)
            bitOffset = roundUp(start, typeAlignBits);
          else bitOffset = start;
          endBits = union ? Math.max(endBits, roundUp(w, 8)) : Math.max(endBits, bitOffset + w);
          align = w === 0 ? typeAlign : contrib;
          if (!f.unnamed || target.unnamedBitfieldsAlign) maxAlign = Math.max(maxAlign, align);
        }
        const offset = Math.floor(bitOffset / 8);
        const size = w === 0 ? 0 : Math.ceil((bitOffset + w) / 8) - offset;
        members.push({
          kind: 'field',
          source: f,
          name: f.name,
          offset,
          size,
          align,
          type: f.type,
          fieldAlign: undefined,
          dims: [],
          element: u.kind === 'enum' ? u : scalar,
          elementSize: size,
          record: undefined,
          bitfield: {
            bitOffset,
            width: w,
            unitSize,
            unnamed: f.unnamed === true,
            signed: isSignedScalar(scalar.name, target),
          },
        });
      } else {
        const fpath = `${path}.${f.name}`;
        const flexible = flexibleOf(f.type);
        const info = sizeAlign(f.type, fpath, inner);
        if (f.align !== undefined && f.align < info.align) {
          throw new LayoutError(
            fpath,
            `alignment ${f.align} is less than the natural alignment ${info.align} of the type`,
          );
        }
        const req = Math.max(f.align ?? 1, info.record ? demanded(info.record) : 1);
        required = Math.max(required, req);
        const align = memberAlign(info.align, msvc ? req : 1, f.align);
        const { dims, element } = peel(f.type);
        const count = dims.reduce((a, b) => a * b, 1);
        const offset = place(flexible ? 0 : info.size, align);
        members.push({
          kind: 'field',
          source: f,
          name: f.name,
          offset,
          size: flexible ? 0 : info.size,
          align,
          type: f.type,
          fieldAlign: f.align,
          dims,
          element,
          elementSize: info.size / count,
          record: info.record,
          ...(flexible ? { flexible: true } : {}),
        });
      }
    }
    const align = Math.max(maxAlign, rec.align ?? 1);
    const size = roundUp(Math.ceil(Math.max(sizeBits, endBits) / 8), align);
    if (size > maxSize) throw tooLarge(path, size);
    // Nesting by value, through named records too (the walks above count only what one visit recursed into).
    const depth = 1 + Math.max(0, ...members.map((m) => (m.record ? (depths.get(m.record) ?? 0) : 0)));
    if (depth > MAX_NESTING) throw tooDeep(path);
    const rl: RecordLayout = {
      record: rec,
      path,
      size,
      align,
      packed,
      pack,
      requiredAlign: required,
      members,
    };
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
    visitNamed(root, root.name, false);
  }
  while (deferred.length > 0) {
    const { type, path } = deferred.shift()!;
    if (type.kind === 'struct' || type.kind === 'union') visitNamed(type, path, false);
    else if (!state.has(type)) visitNamed(type, path, false);
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
      if (m.kind === 'pad' || m.bitfield?.unnamed) continue;
      const offset = base + m.offset;
      if (m.kind === 'anonymous') {
        walk(m.record!, offset, path, pathDims, indices, guaranteed);
        continue;
      }
      const p = [...path, m.name];
      // A flexible array has one more, unbounded (length 0), dimension in front of its element's.
      const dims = m.flexible ? [0, ...m.dims] : m.dims;
      const pd = [...pathDims, dims.length];
      const dimIndices = [...indices];
      let stride = m.elementSize;
      const strides: number[] = [];
      for (let i = dims.length - 1; i >= 0; i--) {
        strides.unshift(stride);
        stride *= dims[i]!;
      }
      dims.forEach((length, i) => {
        dimIndices.push({ length, stride: strides[i]! });
      });
      const g = Math.min(guaranteed, lowBit(offset), ...dimIndices.map((x) => lowBit(x.stride)));
      out.push({
        path: p,
        pathDims: pd,
        member: m,
        offset,
        indices: dimIndices,
        guaranteedAlign: g,
        ...(m.bitfield ? { container: { offset: base, size: r.size } } : {}),
      });
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
