/**
 * A full garbage collection on demand, so that RSS measurements are not blurred by JavaScript garbage (a
 * parsed trace's text, say). Uses global.gc when node runs with --expose-gc, and otherwise obtains it once
 * through V8's flags, which is what --expose-gc does.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null | undefined;

/** Runs a full GC; returns false where none could be obtained. */
export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      try {
        setFlagsFromString('--expose-gc');
        gcFn = runInNewContext('gc') as () => void;
      } catch {
        gcFn = null;
      }
    }
  }
  if (!gcFn) return false;
  gcFn();
  return true;
}
