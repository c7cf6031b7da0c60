// ES module entry of pymalloc/testing: the same hooks as the CommonJS build, which it re-exports.
export * from './testing.js';
