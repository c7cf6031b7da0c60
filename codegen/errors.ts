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
 * A description that is right, but that the compiler has no model of on one target (none today: bitfields on
 * mingw were the last, and are modelled now; the CLI still handles it for the next one): the
 * header can leave that target out (its first comment lists the targets it checks, and compiling it for a
 * target not listed stops with an #error that PYM_LAYOUT_NO_TARGET_CHECK turns off) rather than assert a wrong
 * layout.
 */
export class UnmodelledError extends LayoutError {
  readonly target: string;

  constructor(path: string, target: string, problem: string) {
    super(path, problem);
    this.name = 'UnmodelledError';
    this.target = target;
  }
}
