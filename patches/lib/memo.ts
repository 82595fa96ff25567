// Per-parse memos for the findings a patch's apply, verify, discover and gate each ask for.
import type { Node } from "ts-morph";

/**
 * `fn` memoised by the file's AST. The engine hands out one parse per text (and drift's refs reuse the
 * unchanged ones), so the same text is not walked again; a re-parse is a new key, and the memo holds its
 * ASTs weakly. Only for pure functions of the text (nothing else may change their answer).
 */
export function perParse<F extends { ast: Node }, T>(fn: (file: F) => T): (file: F) => T {
  const memo = new WeakMap<Node, T>();
  return (file) => {
    if (memo.has(file.ast)) return memo.get(file.ast) as T;
    const value = fn(file);
    memo.set(file.ast, value);
    return value;
  };
}
