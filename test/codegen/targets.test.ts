/**
 * The targets table against clang: each triple's predefined macros satisfy exactly its own `cGuard` (x32 is
 * not x86_64, mingw is not MSVC), and agree with the model's pointer size, char signedness and byte order; a
 * header compiled for a target it has no layout of stops with an `#error` unless told not to; the host lookup
 * knows macOS and Windows; and accessors read and write a big-endian image the way C lays it out (s390x),
 * checked on an object file clang compiles. The sizes, alignments and offsets of every scalar and record on
 * every target are the property test's (test/codegen/property.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  array,
  bits,
  computeLayout,
  emitC,
  emitTs,
  enumOf,
  getTarget,
  hostTargetName,
  LayoutError,
  ptr,
  struct,
  TARGET_NAMES,
  TARGETS,
  t,
} from '../../codegen';
import { HAVE_CLANG, have, scratchDir } from './compilers';
import { evalTs, makeViews } from './ts-module';

const HAVE_OBJCOPY = have('llvm-objcopy');

function clang(args: string[], input?: string) {
  const r = spawnSync('clang', args, { encoding: 'utf8', input });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

describe('host lookup', () => {
  it.each([
    ['linux', 'x64', 'x86_64-linux-gnu'],
    ['linux', 'riscv64', 'riscv64-linux-gnu'],
    ['linux', 'ppc64', 'powerpc64le-linux-gnu'],
    ['linux', 's390x', 's390x-linux-gnu'],
    ['darwin', 'x64', 'x86_64-apple-darwin'],
    ['darwin', 'arm64', 'aarch64-apple-darwin'],
    ['win32', 'x64', 'x86_64-windows-msvc'],
    ['win32', 'ia32', 'i686-windows-msvc'],
    ['win32', 'arm64', 'aarch64-windows-msvc'],
  ])('%s-%s is %s', (platform, arch, name) => {
    expect(hostTargetName(platform, arch)).toBe(name);
  });
  it('an unmodelled host is an error naming it', () => {
    expect(() => hostTargetName('aix', 'ppc64')).toThrow(LayoutError);
    expect(() => hostTargetName('linux', 'mips')).toThrow(/linux-mips/);
  });
});

if (!HAVE_CLANG) {
  console.warn('clang not found: the target checks against clang --target were SKIPPED');
  it('target checks SKIPPED: clang is not installed (fails under CI=true)', () => {
    expect(process.env['CI']).not.toBe('true');
  });
} else {
  describe('each triple matches its own guard and no other, and its macros agree with the model', () => {
    const probe = [
      ...TARGET_NAMES.map((n, i) => `#if ${TARGETS.get(n)!.cGuard}\nguard_${i}\n#endif`),
      'pointer __SIZEOF_POINTER__',
      '#ifdef __CHAR_UNSIGNED__\nchar_unsigned\n#else\nchar_signed\n#endif',
      '#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__\nbig_endian\n#else\nlittle_endian\n#endif',
    ].join('\n');
    for (const name of TARGET_NAMES) {
      it(name, () => {
        const target = getTarget(name);
        const r = clang(
          [`--target=${target.clangTriple}`, '-ffreestanding', '-E', '-P', '-x', 'c', '-'],
          probe,
        );
        expect(r.out).not.toMatch(/error/);
        const words = r.out.split(/\s+/).filter(Boolean);
        const matched = words
          .filter((w) => w.startsWith('guard_'))
          .map((w) => TARGET_NAMES[Number(w.slice(6))]);
        expect(matched).toEqual([name]);
        expect(words).toContain(`${target.pointerSize}`);
        expect(words).toContain(target.charSigned ? 'char_signed' : 'char_unsigned');
        expect(words).toContain(`${target.endian}_endian`);
      });
    }
  });

  describe('a header compiled for a target it has no layout of', () => {
    const decls = [struct('pt', { x: t.int32, y: t.int32 })];
    const header = emitC([computeLayout(decls, getTarget('x86_64-linux-gnu'))], {
      source: 'pt.ts',
      guard: 'PT_H',
    });
    const dir = scratchDir();
    const file = join(dir, 'pt.c');
    writeFileSync(file, header);
    const compile = (triple: string, ...extra: string[]) =>
      clang([`--target=${triple}`, '-ffreestanding', '-std=c11', '-fsyntax-only', ...extra, file]);
    it('compiles where it has one', () => {
      expect(compile('x86_64-linux-gnu').out).toBe('');
    });
    it('stops with an #error on an unmodelled triple and on a modelled one it was not generated for', () => {
      for (const triple of ['mips-linux-gnu', 'aarch64-linux-gnu', 'x86_64-linux-gnux32']) {
        const r = compile(triple);
        expect(r.ok).toBe(false);
        expect(r.out).toMatch(/error: "PT_H: this header has no layout for the target being compiled/);
      }
    });
    it('compiles there when PYM_LAYOUT_NO_TARGET_CHECK is defined', () => {
      expect(compile('mips-linux-gnu', '-DPYM_LAYOUT_NO_TARGET_CHECK').out).toBe('');
    });
  });

  // One record of every kind of scalar member, a misaligned (packed) member, an array and an enum.
  const kind = enumOf('img_kind', t.uint16, { IMG_A: 1, IMG_B: 0xbeef });
  const inner = struct('img_inner', { a: t.uint8, w: t.uint32, q: t.uint64 }, { packed: true });
  const rec = struct('img_rec', {
    u16: t.uint16,
    i32: t.int32,
    u64: t.uint64,
    i64: t.int64,
    f64: t.float64,
    f32: t.float32,
    p: ptr(t.void),
    flag: t.bool,
    i8: t.int8,
    arr: array(t.uint32, 3),
    kind,
    l: t.long,
    packed_in: inner,
    c: t.char,
    // Bitfields: bytes fill from the most significant bit on big-endian targets.
    bf_a: bits(t.uint32, 3),
    bf_b: bits(t.int32, 13),
    bf_c: bits(t.uint32, 20),
    bf_d: bits(t.uint8, 5),
    i128: t.int128,
  });
  const INIT = `struct img_rec image = {
  .u16 = 0x1234, .i32 = -123456789, .u64 = 0xfedcba9876543210ull, .i64 = -0x123456789abcdefll,
  .f64 = -1.5e300, .f32 = 3.25f, .p = (void *)(uintptr_t)0x12345678u, .flag = 1, .i8 = -7,
  .arr = { 0xdeadbeefu, 2, 3 }, .kind = IMG_B, .l = -5,
  .packed_in = { .a = 0xab, .w = 0x01020304u, .q = 0x1122334455667788ull }, .c = 'A',
  .bf_a = 5, .bf_b = -1234, .bf_c = 0xabcde, .bf_d = 17,
  .i128 = -((__int128)0x0123456789abcdefll << 64 | 0x1122334455667788ull),
};
`;
  const I128 = -((0x0123456789abcdefn << 64n) | 0x1122334455667788n);
  // Targets with __int128 (i386 has none), one big-endian.
  const imageTargets = ['s390x-linux-gnu', 'powerpc64le-linux-gnu', 'x86_64-linux-gnu'];
  describe.each(imageTargets)('accessors against the image clang lays out for %s', (name) => {
    const target = getTarget(name);
    const layout = computeLayout([rec], target);
    const size = layout.records.get(rec)!.size;
    let image: Uint8Array;
    let mod: Record<string, (...a: unknown[]) => unknown>;
    beforeAll(() => {
      if (!HAVE_OBJCOPY) return;
      const dir = scratchDir();
      const header = emitC([layout], { source: 'img.ts', guard: 'IMG_H' });
      writeFileSync(join(dir, 'img.c'), `${header}\n${INIT}`);
      const cc = clang([
        `--target=${target.clangTriple}`,
        '-ffreestanding',
        '-std=c11',
        '-c',
        '-o',
        join(dir, 'img.o'),
        join(dir, 'img.c'),
      ]);
      if (!cc.ok) throw new Error(cc.out);
      const oc = spawnSync(
        'llvm-objcopy',
        ['-O', 'binary', '--only-section=.data', join(dir, 'img.o'), join(dir, 'img.bin')],
        {
          encoding: 'utf8',
        },
      );
      if (oc.status !== 0) throw new Error(oc.stderr);
      image = new Uint8Array(readFileSync(join(dir, 'img.bin')));
      mod = evalTs(emitTs(layout, { source: 'img.ts' })) as typeof mod;
    });
    if (!HAVE_OBJCOPY) {
      it('SKIPPED: llvm-objcopy is not installed (fails under CI=true)', () => {
        expect(process.env['CI']).not.toBe('true');
      });
      return;
    }
    const views = () => {
      const m = makeViews(Math.ceil(size / 8) * 8 + 8, 0);
      m.u8.set(image);
      return m;
    };
    it('the image is the record', () => {
      expect(image.length).toBe(size);
    });
    it('getters read what C wrote', () => {
      const m = views();
      const get = (f: string, ...i: number[]) => mod[`img_rec_get_${f}`]!(m, 0, ...i);
      expect(get('u16')).toBe(0x1234);
      expect(get('i32')).toBe(-123456789);
      expect(get('u64')).toBe(0xfedcba9876543210n);
      expect(get('i64')).toBe(-0x123456789abcdefn);
      expect(get('f64')).toBe(-1.5e300);
      expect(get('f32')).toBe(3.25);
      expect(get('p')).toBe(0x12345678);
      expect(get('flag')).toBe(true);
      expect(get('i8')).toBe(-7);
      expect([0, 1, 2].map((i) => get('arr', i))).toEqual([0xdeadbeef, 2, 3]);
      expect(get('kind')).toBe(0xbeef);
      expect(get('l')).toBe(target.scalars.long[0] === 8 ? -5n : -5);
      expect(get('packed_in_a')).toBe(0xab);
      expect(get('packed_in_w')).toBe(0x01020304);
      expect(get('packed_in_q')).toBe(0x1122334455667788n);
      expect(get('c')).toBe(65);
      expect([get('bf_a'), get('bf_b'), get('bf_c'), get('bf_d')]).toEqual([5, -1234, 0xabcde, 17]);
      expect(get('i128')).toBe(I128);
    });
    it('setters write the bytes C wrote', () => {
      const m = makeViews(Math.ceil(size / 8) * 8 + 8, 0);
      const set = (f: string, ...a: unknown[]) => mod[`img_rec_set_${f}`]!(m, 0, ...a);
      set('u16', 0x1234);
      set('i32', -123456789);
      set('u64', 0xfedcba9876543210n);
      set('i64', -0x123456789abcdefn);
      set('f64', -1.5e300);
      set('f32', 3.25);
      set('p', 0x12345678);
      set('flag', true);
      set('i8', -7);
      for (const [i, v] of [0xdeadbeef, 2, 3].entries()) set('arr', i, v);
      set('kind', 0xbeef);
      set('l', target.scalars.long[0] === 8 ? -5n : -5);
      set('packed_in_a', 0xab);
      set('packed_in_w', 0x01020304);
      set('packed_in_q', 0x1122334455667788n);
      set('c', 65);
      set('bf_a', 5);
      set('bf_b', -1234);
      set('bf_c', 0xabcde);
      set('bf_d', 17);
      set('i128', I128);
      expect([...m.u8.subarray(0, size)]).toEqual([...image]);
    });
    if (target.endian === 'big') {
      it('goes through the DataView, big-endian, for every multi-byte member', () => {
        const text = emitTs(layout, { source: 'img.ts' });
        expect(text).not.toMatch(/m\.(u16|i16|u32|i32|f32|f64|u64|i64)\[/);
        expect(text).toMatch(/m\.dv\.getUint16\(p, false\)/);
        expect(text).not.toMatch(/Uint16Array\.of/);
      });
    }
  });
}
