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
