/**
 * The description language: plain, immutable data objects (no classes, so a description built by one copy of
 * this module is understood by another) and the builder functions that make them.
 *
 * Invariants: a description is a graph of `Type` objects; cycles go only through pointers (a struct that
 * contains itself by value is rejected by the layout pass); names are checked there too, so the builders stay
 * small and never throw.
 */

/** Fixed-width scalars: the same size on every target. */
export type FixedScalarName =
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'float32'
  | 'float64'
  | 'bool';

/** C types whose size or alignment depends on the ABI. */
export type AbiScalarName =
  | 'char'
  | 'schar'
  | 'uchar'
  | 'short'
  | 'ushort'
  | 'int'
  | 'uint'
  | 'long'
  | 'ulong'
  | 'longlong'
  | 'ulonglong'
  | 'size_t'
  | 'ssize_t'
  | 'intptr_t'
  | 'uintptr_t'
  | 'ptrdiff_t'
  | 'longdouble'
  | 'int128'
  | 'uint128'
  | 'wchar';

export type ScalarName = FixedScalarName | AbiScalarName;

/** Scalars allowed as the underlying type of an enum (every integer type, not floats or bool). */
export type IntegerScalarName = Exclude<ScalarName, 'float32' | 'float64' | 'bool' | 'longdouble'>;

export interface ScalarType<N extends ScalarName = ScalarName> {
  readonly kind: 'scalar';
  readonly name: N;
}

/** `void`: valid only as the target of a pointer (`ptr(t.void)` is `void *`). */
export interface VoidType {
  readonly kind: 'void';
}

export interface PointerType {
  readonly kind: 'pointer';
  readonly to: Type | VoidType | FunctionType;
}

/**
 * A function type, valid only behind a pointer: `ptr(fn(t.int, [ptr(t.void)]))` is `int (*)(void *)`.
 * `returns` may be `t.void`; `variadic` adds `, ...`.
 */
export interface FunctionType {
  readonly kind: 'function';
  readonly returns: Type | VoidType;
  readonly params: readonly Type[];
  readonly variadic: boolean;
}

/**
 * An array; `dims` lists every dimension, outermost first (`int a[2][3]` has dims [2, 3]). A flexible array
 * member (`T name[]`, only as the last member of a struct) has `flexible: true` and `dims` lists only the
 * dimensions of its element (`int a[][3]` has dims [3], `int a[]` has dims []).
 */
export interface ArrayType {
  readonly kind: 'array';
  readonly element: Type;
  readonly dims: readonly number[];
  readonly flexible?: boolean;
}

/** `const` and/or `volatile` applied to a type (they change no layout; the C header spells them). */
export interface QualifiedType {
  readonly kind: 'qualified';
  readonly type: Type;
  readonly const: boolean;
  readonly volatile: boolean;
}

export interface RecordAttrs {
  /** `__attribute__((packed))` (GCC, clang) / `#pragma pack(1)` (MSVC). @defaultValue false */
  readonly packed?: boolean;
  /**
   * `#pragma pack(N)` (N a power of two): no member is aligned to more than N bytes. Applies to the untagged
   * records declared inside too, as the pragma does on every compiler.
   */
  readonly pack?: number;
  /** Minimum alignment of the whole struct (`__attribute__((aligned(n)))`); a power of two. */
  readonly align?: number;
  /** Packed (as `packed: true`) only on these targets (`struct epoll_event` is packed on x86_64 only). */
  readonly packedOn?: readonly string[];
  /** The record exists only on these targets (a named record only); absent elsewhere. */
  readonly targets?: readonly string[];
}

/** A struct or union. `name` is its tag; an untagged record may only appear inline, as a field's type. */
export interface RecordType {
  readonly kind: 'struct' | 'union';
  readonly name: string | undefined;
  readonly fields: readonly Field[];
  readonly packed: boolean;
  readonly align: number | undefined;
  readonly pack?: number | undefined;
  readonly packedOn?: readonly string[] | undefined;
  readonly targets?: readonly string[] | undefined;
}

export interface TypedefType {
  readonly kind: 'typedef';
  readonly name: string;
  readonly type: Type;
}

export interface EnumType {
  readonly kind: 'enum';
  readonly name: string;
  readonly underlying: ScalarType<IntegerScalarName>;
  readonly members: readonly (readonly [string, number])[];
}

/** An incomplete type (`struct name;`): usable only behind a pointer. A struct of the same tag completes it. */
export interface OpaqueType {
  readonly kind: 'opaque';
  readonly name: string;
  readonly tag: 'struct' | 'union';
}

export type Type =
  | ScalarType
  | PointerType
  | ArrayType
  | RecordType
  | TypedefType
  | EnumType
  | OpaqueType
  | QualifiedType;

/** The named declarations a description module exports. */
export type NamedType = RecordType | TypedefType | EnumType | OpaqueType;

/**
 * One member of a record, after the builders have normalised the object-literal spelling. `bits` makes a
 * field a bitfield (`unsigned x : 3`); an `unnamed` bitfield (`int : 0`) takes space but has no name in C
 * (its `name` is the key used in messages). `targets` limits a member to those targets.
 */
export type Field =
  | {
      readonly kind: 'field';
      readonly name: string;
      readonly type: Type;
      readonly align: number | undefined;
      readonly bits?: number | undefined;
      readonly unnamed?: boolean | undefined;
      readonly targets?: readonly string[] | undefined;
    }
  | {
      readonly kind: 'pad';
      readonly name: string;
      readonly size: number;
      readonly targets?: readonly string[] | undefined;
    }
  | {
      readonly kind: 'anonymous';
      readonly key: string;
      readonly record: RecordType;
      readonly targets?: readonly string[] | undefined;
    };

/** Attributes of one member: `field(t.uint32, { align: 16 })`, `field(t.uint32, { bits: 3 })`. */
export interface FieldAttrs {
  /** `_Alignas(n)`. */
  readonly align?: number;
  /** Width of a bitfield in bits (0 only when `unnamed`). */
  readonly bits?: number;
  /** An unnamed bitfield (`int : 0;`); the object-literal key is only used in messages. */
  readonly unnamed?: boolean;
  /** The member exists only on these targets. */
  readonly targets?: readonly string[];
}

/** A field with attributes: `field(t.uint32, { align: 16 })`. */
export interface FieldSpec {
  readonly kind: 'fieldspec';
  readonly type: Type;
  readonly align: number | undefined;
  readonly bits?: number | undefined;
  readonly unnamed?: boolean | undefined;
  readonly targets?: readonly string[] | undefined;
}

/** Explicit padding: `_pad0: pad(4)` emits `uint8_t _pad0[4];` and no accessors. */
export interface PadSpec {
  readonly kind: 'padspec';
  readonly size: number;
  readonly targets?: readonly string[] | undefined;
}

/** An anonymous struct or union member (C11); its key in the object literal is used only in messages. */
export interface AnonymousSpec {
  readonly kind: 'anonspec';
  readonly record: RecordType;
  readonly targets?: readonly string[] | undefined;
}

export type FieldValue = Type | FieldSpec | PadSpec | AnonymousSpec;

/** Fields in declaration order: object-literal keys keep insertion order. */
export type Fields = Readonly<Record<string, FieldValue>>;

function scalar<N extends ScalarName>(name: N): ScalarType<N> {
  return Object.freeze({ kind: 'scalar', name });
}

/** Every scalar type, plus `t.void` for `void *`. */
export const t = Object.freeze({
  int8: scalar('int8'),
  int16: scalar('int16'),
  int32: scalar('int32'),
  int64: scalar('int64'),
  uint8: scalar('uint8'),
  uint16: scalar('uint16'),
  uint32: scalar('uint32'),
  uint64: scalar('uint64'),
  float32: scalar('float32'),
  float64: scalar('float64'),
  bool: scalar('bool'),
  char: scalar('char'),
  schar: scalar('schar'),
  uchar: scalar('uchar'),
  short: scalar('short'),
  ushort: scalar('ushort'),
  int: scalar('int'),
  uint: scalar('uint'),
  long: scalar('long'),
  ulong: scalar('ulong'),
  longlong: scalar('longlong'),
  ulonglong: scalar('ulonglong'),
  size_t: scalar('size_t'),
  ssize_t: scalar('ssize_t'),
  intptr_t: scalar('intptr_t'),
  uintptr_t: scalar('uintptr_t'),
  ptrdiff_t: scalar('ptrdiff_t'),
  longdouble: scalar('longdouble'),
  int128: scalar('int128'),
  uint128: scalar('uint128'),
  wchar: scalar('wchar'),
  void: Object.freeze({ kind: 'void' }) as VoidType,
});

export const SCALAR_NAMES: readonly ScalarName[] = Object.freeze(
  (Object.keys(t) as (keyof typeof t)[]).filter((k): k is ScalarName => k !== 'void'),
);

/** `ptr(x)` is `x *`; `ptr(t.void)` is `void *`; `ptr(fn(...))` is a function pointer. */
export function ptr(to: Type | VoidType | FunctionType): PointerType {
  return Object.freeze({ kind: 'pointer', to });
}

/** A function type for `ptr`: `ptr(fn(t.int, [t.int, ptr(t.char)]))` is `int (*)(int, char *)`. */
export function fn(
  returns: Type | VoidType,
  params: readonly Type[] = [],
  attrs: { readonly variadic?: boolean } = {},
): FunctionType {
  return Object.freeze({
    kind: 'function',
    returns,
    params: Object.freeze([...params]),
    variadic: attrs.variadic === true,
  });
}

/** A flexible array member, `T name[]`: `flexibleArray(t.uint8)`; only as the last member of a struct. */
export function flexibleArray(element: Type): ArrayType {
  if (element.kind === 'array' && !element.flexible)
    return Object.freeze({ kind: 'array', element: element.element, dims: element.dims, flexible: true });
  return Object.freeze({ kind: 'array', element, dims: Object.freeze([]), flexible: true });
}

/** `const T` (`constOf(t.char)` behind a pointer is `const char *`). */
export function constOf(type: Type): QualifiedType {
  return qualified(type, { const: true });
}

/** `volatile T`. */
export function volatileOf(type: Type): QualifiedType {
  return qualified(type, { volatile: true });
}

/** `const` and/or `volatile` T; qualifying a qualified type merges the qualifiers. */
export function qualified(
  type: Type,
  q: { readonly const?: boolean; readonly volatile?: boolean },
): QualifiedType {
  const inner = type.kind === 'qualified' ? type : undefined;
  return Object.freeze({
    kind: 'qualified',
    type: inner ? inner.type : type,
    const: q.const === true || inner?.const === true,
    volatile: q.volatile === true || inner?.volatile === true,
  });
}

/** `array(t.uint32, 2, 3)` is `uint32_t [2][3]`; an array of arrays is flattened into one. */
export function array(element: Type, length: number, ...moreDims: number[]): ArrayType {
  const dims = [length, ...moreDims];
  if (element.kind === 'array')
    return Object.freeze({ kind: 'array', element: element.element, dims: [...dims, ...element.dims] });
  return Object.freeze({ kind: 'array', element, dims: Object.freeze(dims) });
}

function normaliseFields(fields: Fields): Field[] {
  const out: Field[] = [];
  for (const [key, value] of Object.entries(fields)) {
    const v = value as FieldValue | undefined;
    if (v && v.kind === 'fieldspec') {
      const f: Field = { kind: 'field', name: key, type: v.type, align: v.align };
      out.push({
        ...f,
        ...(v.bits !== undefined ? { bits: v.bits } : {}),
        ...(v.unnamed ? { unnamed: true } : {}),
        ...(v.targets !== undefined ? { targets: v.targets } : {}),
      });
    } else if (v && v.kind === 'padspec')
      out.push({ kind: 'pad', name: key, size: v.size, ...(v.targets ? { targets: v.targets } : {}) });
    else if (v && v.kind === 'anonspec')
      out.push({ kind: 'anonymous', key, record: v.record, ...(v.targets ? { targets: v.targets } : {}) });
    // Anything else (including undefined from a typo in plain JS) is checked by the layout pass.
    else out.push({ kind: 'field', name: key, type: v as Type, align: undefined });
  }
  return out;
}

function record(
  kind: 'struct' | 'union',
  args: [string, Fields, RecordAttrs?] | [Fields, RecordAttrs?],
): RecordType {
  const named = typeof args[0] === 'string';
  const name = named ? (args[0] as string) : undefined;
  const fields = (named ? args[1] : args[0]) as Fields;
  const attrs = ((named ? args[2] : args[1]) ?? {}) as RecordAttrs;
  return Object.freeze({
    kind,
    name,
    fields: Object.freeze(normaliseFields(fields ?? {})),
    packed: attrs.packed === true,
    align: attrs.align,
    ...(attrs.pack !== undefined ? { pack: attrs.pack } : {}),
    ...(attrs.packedOn !== undefined ? { packedOn: Object.freeze([...attrs.packedOn]) } : {}),
    ...(attrs.targets !== undefined ? { targets: Object.freeze([...attrs.targets]) } : {}),
  });
}

/** `struct('pool_header', { ... }, { packed, align })`; without a name, an untagged struct for inline use. */
export function struct(name: string, fields: Fields, attrs?: RecordAttrs): RecordType;
export function struct(fields: Fields, attrs?: RecordAttrs): RecordType;
export function struct(...args: [string, Fields, RecordAttrs?] | [Fields, RecordAttrs?]): RecordType {
  return record('struct', args);
}

/** `union('u', { ... })` or an untagged `union({ ... })` for inline use. */
export function union(name: string, fields: Fields, attrs?: RecordAttrs): RecordType;
export function union(fields: Fields, attrs?: RecordAttrs): RecordType;
export function union(...args: [string, Fields, RecordAttrs?] | [Fields, RecordAttrs?]): RecordType {
  return record('union', args);
}

/** `typedef(name, type)`: `typedef uint8_t block;` is `typedef('block', t.uint8)`. */
export function typedef(name: string, type: Type): TypedefType {
  return Object.freeze({ kind: 'typedef', name, type });
}

/** An enum stored as `underlying`: `enumOf('policy', t.uint32, { POLICY_FIRST_FIT: 0 })`. */
export function enumOf(
  name: string,
  underlying: ScalarType<IntegerScalarName>,
  members: Readonly<Record<string, number>>,
): EnumType {
  return Object.freeze({ kind: 'enum', name, underlying, members: Object.freeze(Object.entries(members)) });
}

/** An incomplete `struct name;` (or union) for pointers to types defined elsewhere or later. */
export function opaque(name: string, tag: 'struct' | 'union' = 'struct'): OpaqueType {
  return Object.freeze({ kind: 'opaque', name, tag });
}

/**
 * A field with attributes: `field(t.uint64, { align: 16 })` is `_Alignas(16) uint64_t x;`,
 * `field(t.uint32, { bits: 3 })` is `uint32_t x : 3;`, `field(t.int, { bits: 0, unnamed: true })` is `int : 0;`,
 * `field(t.uint32, { targets: ['x86_64-linux-gnu'] })` exists on that target only.
 */
export function field(type: Type, attrs: FieldAttrs): FieldSpec {
  return Object.freeze({
    kind: 'fieldspec',
    type,
    align: attrs.align,
    ...(attrs.bits !== undefined ? { bits: attrs.bits } : {}),
    ...(attrs.unnamed ? { unnamed: true } : {}),
    ...(attrs.targets !== undefined ? { targets: Object.freeze([...attrs.targets]) } : {}),
  });
}

/** A bitfield: `bits(t.uint32, 3)` is `uint32_t x : 3;`. */
export function bits(type: Type, width: number): FieldSpec {
  return field(type, { bits: width });
}

/** An unnamed bitfield (`int : 0;` starts a new storage unit): `_z: unnamedBits(t.int, 0)`. */
export function unnamedBits(type: Type, width: number): FieldSpec {
  return field(type, { bits: width, unnamed: true });
}

/** Explicit padding of `size` bytes. */
export function pad(size: number, attrs: { readonly targets?: readonly string[] } = {}): PadSpec {
  return Object.freeze({ kind: 'padspec', size, ...(attrs.targets ? { targets: attrs.targets } : {}) });
}

/** An anonymous member: `{ u: anonymous(union({ a: t.uint32, b: t.float32 })) }` declares `union { ... };`. */
export function anonymous(
  record: RecordType,
  attrs: { readonly targets?: readonly string[] } = {},
): AnonymousSpec {
  return Object.freeze({ kind: 'anonspec', record, ...(attrs.targets ? { targets: attrs.targets } : {}) });
}

const NAMED_KINDS = new Set(['struct', 'union', 'typedef', 'enum', 'opaque']);

/** True for a value a description module may export as a declaration (a named record, typedef, enum, opaque). */
export function isNamedType(value: unknown): value is NamedType {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { kind?: unknown; name?: unknown };
  return typeof v.kind === 'string' && NAMED_KINDS.has(v.kind) && typeof v.name === 'string';
}
