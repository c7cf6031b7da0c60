/**
 * ABI models: for each target, the size and the alignment *as a struct member* of every scalar, the pointer
 * size, how `packed` is spelled and behaves, and the predefined macros that identify the target in C.
 *
 * Facts encoded here (each checked against gcc/clang by test/codegen/property.test.ts):
 * - i386 System V: `double`, `long long` and (u)int64_t align to 4 inside structs.
 * - arm-linux-gnueabihf (AAPCS): they align to 8 although pointers and `long` are 4 bytes.
 * - x86_64-windows-msvc (LLP64): `long` is 4 bytes; packing is `#pragma pack(1)`, which also packs the
 *   untagged records declared inside the packed one (GCC's attribute does not).
 * - `char` is signed on x86 and wasm, unsigned on ARM (this only changes the TypeScript accessors).
 * - `long double`: 16/16 (x87 80-bit padded) on x86_64, 12/4 on i386, 16/16 binary128 on aarch64 Linux and
 *   wasm32, 8/8 (= double) on MSVC and 32-bit Arm. `__int128` exists on 64-bit gcc/clang targets and wasm32
 *   (align 16), not on i386, 32-bit Arm or MSVC. `wchar_t` is 2 bytes unsigned on Windows, 4 elsewhere
 *   (unsigned on Arm).
 * - Bitfields: `sysv` is the Itanium/System V rule of gcc and clang (a bitfield goes at the next free bit
 *   unless it would straddle a boundary of its type's alignment; `packed` and `#pragma pack` let it
 *   straddle); on AAPCS targets (Arm, AArch64) unnamed bitfields, zero-width ones included, raise the record's
 *   alignment to their type's, elsewhere they do not. `msvc` opens a new storage unit of the declared type's
 *   size whenever that size changes or the unit is full, and ignores a zero-width bitfield that does not follow
 *   a bitfield.
 * All targets are little-endian.
 */
import { LayoutError } from './errors';
import type { ScalarName } from './types';

export type TargetName =
  | 'x86_64-linux-gnu'
  | 'aarch64-linux-gnu'
  | 'i386-linux-gnu'
  | 'x86_64-windows-msvc'
  | 'arm-linux-gnueabihf'
  | 'wasm32';

export interface Target {
  readonly name: TargetName;
  /** The triple for `clang --target=`. */
  readonly clangTriple: string;
  /** A C preprocessor condition true exactly when compiling for this target. */
  readonly cGuard: string;
  readonly pointerSize: 4 | 8;
  /** `gnu`: packing is an attribute of one record; `msvc`: `#pragma pack(1)` also packs inline records. */
  readonly packing: 'gnu' | 'msvc';
  readonly charSigned: boolean;
  /** Whether `wchar_t` is signed. */
  readonly wcharSigned: boolean;
  /** [size, alignment as a struct member] of every scalar. */
  readonly scalars: Readonly<Record<ScalarName, readonly [number, number]>>;
  /** Scalars the target's C compilers do not have (`__int128` on 32-bit targets and MSVC). */
  readonly unsupported: readonly ScalarName[];
  /** Bitfield allocation rule (see the top of this file). */
  readonly bitfields: 'sysv' | 'msvc';
  /** `sysv` only: unnamed bitfields raise the record's alignment to their type's (AAPCS). */
  readonly unnamedBitfieldsAlign: boolean;
}

interface MoreScalars {
  readonly longdouble: readonly [number, number];
  /** Alignment of `__int128` (size 16). */
  readonly int128: number;
  readonly wchar: 2 | 4;
}

function scalars(
  pointer: 4 | 8,
  long: 4 | 8,
  align64: 4 | 8,
  more: MoreScalars,
): Record<ScalarName, readonly [number, number]> {
  const p = [pointer, pointer] as const;
  const w64 = [8, align64] as const;
  return {
    longdouble: more.longdouble,
    int128: [16, more.int128],
    uint128: [16, more.int128],
    wchar: [more.wchar, more.wchar],
    int8: [1, 1],
    uint8: [1, 1],
    char: [1, 1],
    schar: [1, 1],
    uchar: [1, 1],
    bool: [1, 1],
    int16: [2, 2],
    uint16: [2, 2],
    short: [2, 2],
    ushort: [2, 2],
    int32: [4, 4],
    uint32: [4, 4],
    int: [4, 4],
    uint: [4, 4],
    float32: [4, 4],
    int64: w64,
    uint64: w64,
    longlong: w64,
    ulonglong: w64,
    float64: w64,
    long: long === 8 ? w64 : [4, 4],
    ulong: long === 8 ? w64 : [4, 4],
    size_t: p,
    ssize_t: p,
    intptr_t: p,
    uintptr_t: p,
    ptrdiff_t: p,
  };
}

const TARGET_LIST: readonly Target[] = [
  {
    name: 'x86_64-linux-gnu',
    clangTriple: 'x86_64-linux-gnu',
    cGuard: 'defined(__x86_64__) && defined(__linux__)',
    pointerSize: 8,
    packing: 'gnu',
    charSigned: true,
    scalars: scalars(8, 8, 8, { longdouble: [16, 16], int128: 16, wchar: 4 }),
    wcharSigned: true,
    unsupported: [],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: false,
  },
  {
    name: 'aarch64-linux-gnu',
    clangTriple: 'aarch64-linux-gnu',
    cGuard: 'defined(__aarch64__) && defined(__linux__)',
    pointerSize: 8,
    packing: 'gnu',
    charSigned: false,
    scalars: scalars(8, 8, 8, { longdouble: [16, 16], int128: 16, wchar: 4 }),
    wcharSigned: false,
    unsupported: [],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: true,
  },
  {
    name: 'i386-linux-gnu',
    clangTriple: 'i386-linux-gnu',
    cGuard: 'defined(__i386__) && defined(__linux__)',
    pointerSize: 4,
    packing: 'gnu',
    charSigned: true,
    scalars: scalars(4, 4, 4, { longdouble: [12, 4], int128: 16, wchar: 4 }),
    wcharSigned: true,
    unsupported: ['int128', 'uint128'],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: false,
  },
  {
    name: 'x86_64-windows-msvc',
    clangTriple: 'x86_64-windows-msvc',
    cGuard: 'defined(_MSC_VER) && defined(_M_X64) && defined(_WIN64)',
    pointerSize: 8,
    packing: 'msvc',
    charSigned: true,
    scalars: scalars(8, 4, 8, { longdouble: [8, 8], int128: 16, wchar: 2 }),
    wcharSigned: false,
    unsupported: ['int128', 'uint128'],
    bitfields: 'msvc',
    unnamedBitfieldsAlign: false,
  },
  {
    name: 'arm-linux-gnueabihf',
    clangTriple: 'arm-linux-gnueabihf',
    cGuard: 'defined(__arm__) && defined(__ARM_PCS_VFP) && defined(__linux__)',
    pointerSize: 4,
    packing: 'gnu',
    charSigned: false,
    scalars: scalars(4, 4, 8, { longdouble: [8, 8], int128: 16, wchar: 4 }),
    wcharSigned: false,
    unsupported: ['int128', 'uint128'],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: true,
  },
  {
    name: 'wasm32',
    clangTriple: 'wasm32',
    cGuard: 'defined(__wasm32__)',
    pointerSize: 4,
    packing: 'gnu',
    charSigned: true,
    scalars: scalars(4, 4, 8, { longdouble: [16, 16], int128: 16, wchar: 4 }),
    wcharSigned: true,
    unsupported: [],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: false,
  },
];

export const TARGETS: ReadonlyMap<TargetName, Target> = new Map(TARGET_LIST.map((t) => [t.name, t]));
export const TARGET_NAMES: readonly TargetName[] = TARGET_LIST.map((t) => t.name);

/** The target the TypeScript accessors are generated for when none is named: pymalloc's 64-bit heap. */
export const DEFAULT_TS_TARGET: TargetName = 'x86_64-linux-gnu';

/** The target of the running process (`host`). */
export function hostTargetName(platform: string = process.platform, arch: string = process.arch): TargetName {
  if (platform === 'win32' && arch === 'x64') return 'x86_64-windows-msvc';
  if (platform === 'linux' || platform === 'android') {
    if (arch === 'x64') return 'x86_64-linux-gnu';
    if (arch === 'arm64') return 'aarch64-linux-gnu';
    if (arch === 'ia32') return 'i386-linux-gnu';
    if (arch === 'arm') return 'arm-linux-gnueabihf';
  }
  throw new LayoutError('', `no ABI model for the host (${platform}-${arch}); name a --target`);
}

/** Looks a target up by name (`host` is the running process's). */
export function getTarget(name: string): Target {
  const resolved = name === 'host' ? hostTargetName() : name;
  const target = TARGETS.get(resolved as TargetName);
  if (!target)
    throw new LayoutError('', `unknown target '${name}' (known: host, ${TARGET_NAMES.join(', ')})`);
  return target;
}
