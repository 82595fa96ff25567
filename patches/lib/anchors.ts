// Anchor recording: while the engine runs a patch's apply(), every node a finder returns is passed
// to a sink, so the stamp can fingerprint the upstream code around each anchor (semantic drift).
import type { Node } from "ts-morph";

let sink: ((node: Node) => void) | null = null;

/** Run `fn` with `onAnchor` receiving each node the finders locate. */
export function recordAnchors<T>(onAnchor: (node: Node) => void, fn: () => T): T {
  const previous = sink;
  sink = onAnchor;
  try {
    return fn();
  } finally {
    sink = previous;
  }
}

/** Called by the finders (find.ts, ast.ts) for each node they return. */
export function noteAnchor(node: Node | undefined): void {
  if (node && sink) sink(node);
}
