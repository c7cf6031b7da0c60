/**
 * Why a C program embedding CPython (what `pymalloc record` builds) cannot be built here, or undefined: the tests
 * that need one say this reason in their output instead of skipping silently.
 */
import { CBuildError, findCompiler, libpython } from '../../lib/tools/cbuild';

export function embedMissing(): string | undefined {
  try {
    findCompiler();
    libpython();
    return undefined;
  } catch (err) {
    if (err instanceof CBuildError) return err.message;
    throw err;
  }
}
