/**
 * ABI models: for each target, the size and the alignment *as a struct member* of every scalar, the pointer
 * size, how `packed` is spelled and behaves, and the predefined macros that identify the target in C.
 *
 * Facts encoded here (each checked against gcc/clang by test/codegen/property.test.ts):
 * - i386 System V: `double`, `long long` and (u)int64_t align to 4 inside structs.
 * - arm-linux-gnueabihf (AAPCS): they align to 8 although pointers and `long` are 4 bytes.
 * - x86_64-windows-msvc (LLP64): `long` is 4 bytes; packing is `#pragma pack(1)`, which also packs the
 *   untagged records declared inside the packed one (GCC's attribute does not).
 * - i686-windows-msvc and x86_64-linux-gnux32 are ILP32 but align 64-bit members to 8 (unlike i386 System V).
 * - x86_64-windows-gnu (mingw) is LLP64 like MSVC, lays out bitfields by GCC's ms_struct rule (the default
 *   there, `-mms-bitfields`), packs with GCC's attribute (`packing: 'gnu'`) and has `__int128` and an x87
 *   long double.
 * - `char` is signed on x86, wasm, Windows and Apple (also Apple arm64); unsigned on Linux ARM, RISC-V, POWER
 *   and s390x (this only changes the TypeScript accessors).
 * - `long double`: 16/16 (x87 80-bit padded) on x86_64, 12/4 on i386, 16/16 binary128 on aarch64 Linux and
 *   wasm32, 8/8 (= double) on MSVC and 32-bit Arm. Also 16/16 on riscv64, powerpc64le (IBM double-double),
 *   x32, mingw, x86_64 macOS and wasm64; 16/8 on s390x; 8/8 on Apple arm64 and every Windows MSVC target. `__int128` exists on 64-bit gcc/clang targets and wasm32
 *   (align 16), not on i386, 32-bit Arm or MSVC. `wchar_t` is 2 bytes unsigned on Windows, 4 elsewhere
 *   (unsigned on Arm).
 * - Bitfields: `sysv` is the Itanium/System V rule of gcc and clang (a bitfield goes at the next free bit
 *   unless it would straddle a boundary of its type's alignment; `packed` and `#pragma pack` let it
 *   straddle); on AAPCS targets (Arm, AArch64) unnamed bitfields, zero-width ones included, raise the record's
 *   alignment to their type's, elsewhere they do not. `msvc` opens a new storage unit of the declared type's
 *   size whenever that size changes or the unit is full, and ignores a zero-width bitfield that does not follow
 *   a bitfield. `ms_struct` is that rule under GCC's attributes, as GCC for mingw (12) and clang (14) both lay
 *   it out: a unit aligns to its type's size, capped by pack(N); unnamed bitfields count for the record's
 *   alignment. The shapes where the two differ (bitfields wider than a byte in packed records and unions, a
 *   zero-width bitfield after a bitfield under a smaller pack(N)) are refused: refuseMsStruct in layout.ts.
 * - s390x is big-endian; every other target is little-endian (the accessors follow `endian`).
 * - The `cGuard`s are mutually exclusive: x32 defines `__x86_64__` too, so x86_64's guard requires `__LP64__`;
 *   mingw defines `_WIN64` but not `_MSC_VER`. test/codegen/targets.test.ts checks that each triple's
 *   predefined macros satisfy exactly its own guard.
 */
import { LayoutError } from './errors';
import type { ScalarName } from './types';

export type TargetName =
  | 'x86_64-linux-gnu'
  | 'aarch64-linux-gnu'
  | 'i386-linux-gnu'
  | 'x86_64-windows-msvc'
  | 'arm-linux-gnueabihf'
  | 'wasm32'
  | 'riscv64-linux-gnu'
  | 'powerpc64le-linux-gnu'
  | 's390x-linux-gnu'
  | 'x86_64-linux-gnux32'
  | 'i686-windows-msvc'
  | 'aarch64-windows-msvc'
  | 'x86_64-windows-gnu'
  | 'x86_64-apple-darwin'
  | 'aarch64-apple-darwin'
  | 'wasm64';

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
  /** Byte order of multi-byte scalars in memory. */
  readonly endian: 'little' | 'big';
  /** Whether `wchar_t` is signed. */
  readonly wcharSigned: boolean;
  /** [size, alignment as a struct member] of every scalar. */
  readonly scalars: Readonly<Record<ScalarName, readonly [number, number]>>;
  /** Scalars the target's C compilers do not have (`__int128` on 32-bit targets and MSVC). */
  readonly unsupported: readonly ScalarName[];
  /** Bitfield allocation rule (see the top of this file). */
  readonly bitfields: 'sysv' | 'msvc' | 'ms_struct';
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
    cGuard: 'defined(__x86_64__) && defined(__LP64__) && defined(__linux__)',
    pointerSize: 8,
    packing: 'gnu',
    charSigned: true,
    endian: 'little',
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
    endian: 'little',
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
    endian: 'little',
    scalars: scalars(4, 4, 4, { longdouble: [12, 4], int128: 16, wchar: 4 }),
    wcharSigned: true,
    unsupported: ['int128', 'uint128'],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: false,
  },
  {
    name: 'x86_64-windows-msvc',
    clangTriple: 'x86_64-windows-msvc',
    cGuard: 'defined(_MSC_VER) && defined(_M_X64) && !defined(_M_ARM64EC) && defined(_WIN64)',
    pointerSize: 8,
    packing: 'msvc',
    charSigned: true,
    endian: 'little',
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
    endian: 'little',
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
    endian: 'little',
    scalars: scalars(4, 4, 8, { longdouble: [16, 16], int128: 16, wchar: 4 }),
    wcharSigned: true,
    unsupported: [],
    bitfields: 'sysv',
    unnamedBitfieldsAlign: false,
  },
  ...(
    [
      // name, guard, pointer, packing, char signed, endian, long, 64-bit align, long double, wchar, wchar
      // signed, __int128 supported, bitfields, unnamed bitfields align
      [
        'riscv64-linux-gnu',
        'defined(__riscv) && defined(__LP64__) && defined(__linux__)',
        8,
        'gnu',
        false,
        'little',
        8,
        8,
        [16, 16],
        4,
        true,
        true,
        'sysv',
        false,
      ],
      [
        'powerpc64le-linux-gnu',
        'defined(__powerpc64__) && defined(__LITTLE_ENDIAN__) && defined(__linux__)',
        8,
        'gnu',
        false,
        'little',
        8,
        8,
        [16, 16],
        4,
        true,
        true,
        'sysv',
        false,
      ],
      [
        's390x-linux-gnu',
        'defined(__s390x__) && defined(__linux__)',
        8,
        'gnu',
        false,
        'big',
        8,
        8,
        [16, 8],
        4,
        true,
        true,
        'sysv',
        false,
      ],
      [
        'x86_64-linux-gnux32',
        'defined(__x86_64__) && defined(__ILP32__) && defined(__linux__)',
        4,
        'gnu',
        true,
        'little',
        4,
        8,
        [16, 16],
        4,
        true,
        true,
        'sysv',
        false,
      ],
      [
        'i686-windows-msvc',
        'defined(_MSC_VER) && defined(_M_IX86) && !defined(_WIN64)',
        4,
        'msvc',
        true,
        'little',
        4,
        8,
        [8, 8],
        2,
        false,
        false,
        'msvc',
        false,
      ],
      [
        'aarch64-windows-msvc',
        'defined(_MSC_VER) && defined(_M_ARM64) && defined(_WIN64)',
        8,
        'msvc',
        true,
        'little',
        4,
        8,
        [8, 8],
        2,
        false,
        false,
        'msvc',
        false,
      ],
      [
        'x86_64-windows-gnu',
        'defined(__MINGW64__) && defined(__x86_64__) && !defined(_MSC_VER)',
        8,
        'gnu',
        true,
        'little',
        4,
        8,
        [16, 16],
        2,
        false,
        true,
        'ms_struct',
        false,
      ],
      [
        'x86_64-apple-darwin',
        'defined(__APPLE__) && defined(__x86_64__)',
        8,
        'gnu',
        true,
        'little',
        8,
        8,
        [16, 16],
        4,
        true,
        true,
        'sysv',
        false,
      ],
      [
        'aarch64-apple-darwin',
        'defined(__APPLE__) && defined(__aarch64__)',
        8,
        'gnu',
        true,
        'little',
        8,
        8,
        [8, 8],
        4,
        true,
        true,
        'sysv',
        false,
      ],
      [
        'wasm64',
        'defined(__wasm64__)',
        8,
        'gnu',
        true,
        'little',
        8,
        8,
        [16, 16],
        4,
        true,
        true,
        'sysv',
        false,
      ],
    ] as const
  ).map(
    ([
      name,
      cGuard,
      pointerSize,
      packing,
      charSigned,
      endian,
      long,
      align64,
      longdouble,
      wchar,
      wcharSigned,
      int128,
      bitfields,
      unnamedBitfieldsAlign,
    ]): Target => ({
      name,
      clangTriple: name,
      cGuard,
      pointerSize,
      packing,
      charSigned,
      endian,
      scalars: scalars(pointerSize, long, align64, { longdouble, int128: 16, wchar }),
      wcharSigned,
      unsupported: int128 ? [] : ['int128', 'uint128'],
      bitfields,
      unnamedBitfieldsAlign,
    }),
  ),
];

export const TARGETS: ReadonlyMap<TargetName, Target> = new Map(TARGET_LIST.map((t) => [t.name, t]));
export const TARGET_NAMES: readonly TargetName[] = TARGET_LIST.map((t) => t.name);

/** The target the TypeScript accessors are generated for when none is named: pymalloc's 64-bit heap. */
export const DEFAULT_TS_TARGET: TargetName = 'x86_64-linux-gnu';

/** Node's `process.platform` / `process.arch` → the target that process runs on. */
const HOSTS: Readonly<Record<string, Readonly<Record<string, TargetName>>>> = {
  linux: {
    x64: 'x86_64-linux-gnu',
    arm64: 'aarch64-linux-gnu',
    ia32: 'i386-linux-gnu',
    arm: 'arm-linux-gnueabihf',
    riscv64: 'riscv64-linux-gnu',
    // Node's ppc64 on Linux is little-endian (big-endian POWER is AIX, platform 'aix').
    ppc64: 'powerpc64le-linux-gnu',
    s390x: 's390x-linux-gnu',
  },
  // Node for Windows is built with MSVC.
  win32: { x64: 'x86_64-windows-msvc', ia32: 'i686-windows-msvc', arm64: 'aarch64-windows-msvc' },
  darwin: { x64: 'x86_64-apple-darwin', arm64: 'aarch64-apple-darwin' },
};

/** The target of the running process (`host`). */
export function hostTargetName(platform: string = process.platform, arch: string = process.arch): TargetName {
  const found = HOSTS[platform === 'android' ? 'linux' : platform]?.[arch];
  if (found === undefined)
    throw new LayoutError('', `no ABI model for the host (${platform}-${arch}); name a --target`);
  return found;
}

/** Looks a target up by name (`host` is the running process's). */
export function getTarget(name: string): Target {
  const resolved = name === 'host' ? hostTargetName() : name;
  const target = TARGETS.get(resolved as TargetName);
  if (!target)
    throw new LayoutError('', `unknown target '${name}' (known: host, ${TARGET_NAMES.join(', ')})`);
  return target;
}
