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
