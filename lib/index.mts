// ES module entry: the same API as the CommonJS build, which it re-exports.
export * from './index.js';
