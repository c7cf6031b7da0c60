/**
 * The one error type of the layout compiler. `path` names the offending part of the description
 * (`pool_header.ref._padding`, `$.types[2].fields[0]` for JSON); the message always starts with it,
 * so a caller can print `err.message` alone and the user knows where to look.
 */
export class LayoutError extends Error {
  readonly path: string;

  constructor(path: string, problem: string) {
    super(path ? `${path}: ${problem}` : problem);
    this.name = 'LayoutError';
    this.path = path;
  }
}

/**
 * A description that is right, but that the compiler has no model of on one target (`target`): on mingw, the
 * bitfield shapes GCC and clang lay out differently (refuseMsStruct in layout.ts). The header can leave that
 * target out (a comment lists the targets it checks, and compiling it for a target not listed stops with an
 * #error that PYM_LAYOUT_NO_TARGET_CHECK turns off) rather than assert a layout wrong for one compiler.
 */
export class UnmodelledError extends LayoutError {
  readonly target: string;

  constructor(path: string, target: string, problem: string) {
    super(path, problem);
    this.name = 'UnmodelledError';
    this.target = target;
  }
}
