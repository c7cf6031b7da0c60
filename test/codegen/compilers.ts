/** Runs the real compilers the codegen tests check against (gcc for the host, clang for cross targets). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Target } from '../../codegen';

export function have(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;
}

export const HAVE_CLANG = have('clang');
export const HAVE_GCC = have('gcc');

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'pymalloc-codegen-'));
}

export interface CompileResult {
  ok: boolean;
  output: string;
}

/** Compiles `source` (syntax only) for `target`: gcc when it is the host, else clang --target. */
export function compileFor(
  source: string,
  target: Target,
  host: Target,
  lang: 'c' | 'c++' = 'c',
): CompileResult {
  const dir = scratchDir();
  const file = join(dir, lang === 'c' ? 'check.c' : 'check.cc');
  writeFileSync(file, source);
  const std = lang === 'c' ? '-std=c11' : '-std=c++17';
  const warn = ['-Wall', '-Wextra', '-Werror'];
  const r =
    target.name === host.name
      ? spawnSync(lang === 'c' ? 'gcc' : 'g++', [std, ...warn, '-fsyntax-only', file], { encoding: 'utf8' })
      : spawnSync(
          'clang',
          [
            `--target=${target.clangTriple}`,
            '-ffreestanding',
            // The header includes only C headers, which -ffreestanding takes from clang's own resource
            // directory; no C++ library is needed (Apple targets would look for libc++'s and warn).
            ...(lang === 'c' ? [] : ['-x', 'c++', '-nostdinc++']),
            std,
            ...warn,
            '-fsyntax-only',
            file,
          ],
          { encoding: 'utf8' },
        );
  return {
    ok: r.status === 0,
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}

/** One record as clang lays it out: size and alignment in bits, the bit offset of every field. */
export interface Dumped {
  size: number;
  align: number;
  offsets: number[];
}

/** Parses `-fdump-record-layouts-simple`: record name or line → size, alignment, field offsets (bits). */
export function parseDump(text: string): Map<string, Dumped> {
  const out = new Map<string, Dumped>();
  const blocks = text.split('*** Dumping AST Record Layout').slice(1);
  for (const b of blocks) {
    const type = /Type: (.*)/.exec(b)?.[1] ?? '';
    const at = /\((?:unnamed|anonymous) at [^)]*:(\d+):\d+\)$/.exec(type);
    const key = at ? `line ${at[1]}` : type.replace(/^(struct|union) /, '');
    const size = Number(/\n\s*Size:(\d+)/.exec(b)?.[1]);
    const align = Number(/Alignment:(\d+)/.exec(b)?.[1]);
    const offsets = (/FieldOffsets: \[([^\]]*)\]/.exec(b)?.[1] ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .map(Number);
    out.set(key, { size, align, offsets });
  }
  return out;
}

/** Compiles `source` with clang for `triple`, dumping every record layout it computes (`Dumped`, parsed by parseDump). */
export function clangDump(header: string, triple: string): { ok: boolean; output: string; dump: string } {
  const dir = scratchDir();
  const file = join(dir, 'model.c');
  writeFileSync(file, header);
  const r = spawnSync(
    'clang',
    [
      `--target=${triple}`,
      '-ffreestanding',
      '-std=c11',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-fsyntax-only',
      '-Xclang',
      '-fdump-record-layouts-simple',
      file,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  );
  return { ok: r.status === 0, output: r.stderr ?? '', dump: r.stdout ?? '' };
}

/** GCC for mingw (Debian's gcc-mingw-w64-x86-64), which lays some ms_struct bitfields out otherwise than clang. */
export const MINGW_GCC = 'x86_64-w64-mingw32-gcc';
export const HAVE_MINGW_GCC = have(MINGW_GCC);

/** Compiles C `source` (C11, syntax only, warnings as errors) with GCC for mingw. */
export function compileMingwGcc(source: string): CompileResult {
  const dir = scratchDir();
  const file = join(dir, 'check.c');
  writeFileSync(file, source);
  const r = spawnSync(MINGW_GCC, ['-std=c11', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', file], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  return {
    ok: r.status === 0,
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}

/**
 * The values of integer constant expressions (`sizeof`, `_Alignof`, `offsetof`) as a compiler computes them
 * after `source`: they are compiled into an array and read back from the assembly (no linking, nothing run),
 * so a cross compiler can say what its target lays out. `compiler` is the command and its first arguments.
 */
export function constantsOf(compiler: readonly string[], source: string, exprs: readonly string[]): number[] {
  const dir = scratchDir();
  const file = join(dir, 'constants.c');
  writeFileSync(
    file,
    `${source}\n#include <stddef.h>\nconst unsigned long long pym_constants[] = {${exprs.map((e) => `1 + (${e})`).join(', ')}};\n`,
  );
  const r = spawnSync(compiler[0]!, [...compiler.slice(1), '-std=c11', '-O1', '-S', '-o', '-', file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${compiler.join(' ')} failed:\n${r.stderr}${r.error ?? ''}`);
  const values: number[] = [];
  let inside = false;
  for (const line of r.stdout.split('\n')) {
    if (/^_?pym_constants:/.test(line)) inside = true;
    else if (inside) {
      const m = /^\s+\.quad\s+(\d+)\b/.exec(line);
      // Each is compiled as 1 + the value, so that none is 0 (a compiler may write zeros as `.zero`).
      if (m) values.push(Number(m[1]) - 1);
      else if (!/^\s+\./.test(line) || values.length === exprs.length) break;
    }
  }
  if (values.length !== exprs.length)
    throw new Error(
      `${compiler.join(' ')}: read ${values.length} of ${exprs.length} constants:\n${r.stdout}`,
    );
  return values;
}
