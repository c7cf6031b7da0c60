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
  | 'ptrdiff_t';

export type ScalarName = FixedScalarName | AbiScalarName;

/** Scalars allowed as the underlying type of an enum (every integer type, not floats or bool). */
export type IntegerScalarName = Exclude<ScalarName, 'float32' | 'float64' | 'bool'>;

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
  readonly to: Type | VoidType;
}

/** A fixed array; `dims` lists every dimension, outermost first (`int a[2][3]` has dims [2, 3]). */
export interface ArrayType {
  readonly kind: 'array';
  readonly element: Type;
  readonly dims: readonly number[];
}

export interface RecordAttrs {
  /** `__attribute__((packed))` (GCC, clang) / `#pragma pack(1)` (MSVC). @defaultValue false */
  readonly packed?: boolean;
  /** Minimum alignment of the whole struct (`__attribute__((aligned(n)))`); a power of two. */
  readonly align?: number;
}

/** A struct or union. `name` is its tag; an untagged record may only appear inline, as a field's type. */
export interface RecordType {
  readonly kind: 'struct' | 'union';
  readonly name: string | undefined;
  readonly fields: readonly Field[];
  readonly packed: boolean;
  readonly align: number | undefined;
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

export type Type = ScalarType | PointerType | ArrayType | RecordType | TypedefType | EnumType | OpaqueType;

/** The named declarations a description module exports. */
export type NamedType = RecordType | TypedefType | EnumType | OpaqueType;

/** One member of a record, after the builders have normalised the object-literal spelling. */
export type Field =
  | { readonly kind: 'field'; readonly name: string; readonly type: Type; readonly align: number | undefined }
  | { readonly kind: 'pad'; readonly name: string; readonly size: number }
  | { readonly kind: 'anonymous'; readonly key: string; readonly record: RecordType };

/** A field with attributes: `field(t.uint32, { align: 16 })`. */
export interface FieldSpec {
  readonly kind: 'fieldspec';
  readonly type: Type;
  readonly align: number | undefined;
}

/** Explicit padding: `_pad0: pad(4)` emits `uint8_t _pad0[4];` and no accessors. */
export interface PadSpec {
  readonly kind: 'padspec';
  readonly size: number;
}

/** An anonymous struct or union member (C11); its key in the object literal is used only in messages. */
export interface AnonymousSpec {
  readonly kind: 'anonspec';
  readonly record: RecordType;
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
  void: Object.freeze({ kind: 'void' }) as VoidType,
});

export const SCALAR_NAMES: readonly ScalarName[] = Object.freeze(
  (Object.keys(t) as (keyof typeof t)[]).filter((k): k is ScalarName => k !== 'void'),
);

/** `ptr(x)` is `x *`; `ptr(t.void)` is `void *`. */
export function ptr(to: Type | VoidType): PointerType {
  return Object.freeze({ kind: 'pointer', to });
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
    if (v && v.kind === 'fieldspec') out.push({ kind: 'field', name: key, type: v.type, align: v.align });
    else if (v && v.kind === 'padspec') out.push({ kind: 'pad', name: key, size: v.size });
    else if (v && v.kind === 'anonspec') out.push({ kind: 'anonymous', key, record: v.record });
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

/** A field with attributes: `field(t.uint64, { align: 16 })` is `_Alignas(16) uint64_t x;`. */
export function field(type: Type, attrs: { readonly align?: number }): FieldSpec {
  return Object.freeze({ kind: 'fieldspec', type, align: attrs.align });
}

/** Explicit padding of `size` bytes. */
export function pad(size: number): PadSpec {
  return Object.freeze({ kind: 'padspec', size });
}

/** An anonymous member: `{ u: anonymous(union({ a: t.uint32, b: t.float32 })) }` declares `union { ... };`. */
export function anonymous(record: RecordType): AnonymousSpec {
  return Object.freeze({ kind: 'anonspec', record });
}

const NAMED_KINDS = new Set(['struct', 'union', 'typedef', 'enum', 'opaque']);

/** True for a value a description module may export as a declaration (a named record, typedef, enum, opaque). */
export function isNamedType(value: unknown): value is NamedType {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { kind?: unknown; name?: unknown };
  return typeof v.kind === 'string' && NAMED_KINDS.has(v.kind) && typeof v.name === 'string';
}
