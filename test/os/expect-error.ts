/**
 * Asserts that `fn` throws an error of the given class and `code`. Errors made by the addon belong to
 * Node's main realm, not to the jest sandbox, so the class is matched by its name, not by instanceof.
 */
export function expectError(fn: () => unknown, type: { name: string }, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(Object.prototype.toString.call(thrown)).toBe('[object Error]');
  expect({ name: (thrown as Error).name, code: (thrown as { code?: unknown }).code }).toEqual({
    name: type.name,
    code,
  });
}
