// Locators for patches: every anchor must match exactly once, and a miss explains itself.
import { Node, SyntaxKind } from "ts-morph";
import type { PatchFile, VerifyFile } from "../define-patch.ts";
import { noteAnchor } from "./anchors.ts";
import { At, PatchTargetError } from "./errors.ts";

type AnyFile = PatchFile | VerifyFile;

export interface Anchor<T extends Node> {
  /** Human shape for messages, e.g. `call router.post("/event", …)`. */
  shape: string;
  kind: SyntaxKind;
  match: (node: Node) => node is T;
  /** Where to search; defaults to the whole file. */
  within?: Node;
}

/** All nodes of a kind matching a predicate, in source order. */
export function findAll<T extends Node>(file: AnyFile, anchor: Anchor<T>): T[] {
  const root = anchor.within ?? file.ast;
  const hits = root.getDescendantsOfKind(anchor.kind).filter((n): n is T & typeof n => anchor.match(n)) as unknown as T[];
  hits.forEach(noteAnchor);
  return hits;
}

/** The single node matching `anchor`; otherwise a PatchTargetError naming the nearest candidate. */
export function findOne<T extends Node>(patchId: string, file: AnyFile, anchor: Anchor<T>): T {
  const hits = findAll(file, anchor);
  if (hits.length === 1) return hits[0];
  const root = anchor.within ?? file.ast;
  if (hits.length === 0) {
    const nearest = nearestCandidate(root.getDescendantsOfKind(anchor.kind), anchor.shape);
    const candidate = nearest ? { line: nearest.getStartLineNumber(), text: firstLine(nearest) } : undefined;
    throw new PatchTargetError(patchId, file.path, anchor.shape, 0, `${nearest ? "" : "No candidate of that kind at all. "}Renamed or removed upstream?`, candidate);
  }
  const lines = hits.map((h) => h.getStartLineNumber()).join(", ");
  throw new PatchTargetError(patchId, file.path, anchor.shape, hits.length, `Matches at lines ${lines}; the anchor is ambiguous, narrow it.`);
}

/** Like findOne but returns null when absent (still fails on ambiguity). */
export function findOptional<T extends Node>(patchId: string, file: AnyFile, anchor: Anchor<T>): T | null {
  const hits = findAll(file, anchor);
  if (hits.length > 1) return findOne(patchId, file, anchor);
  return hits[0] ?? null;
}

/** `line N: first line of the node`, a one-line code frame, as data (in a finding`…` the engine adds upstream's line). */
export function frame(node: Node): At {
  return new At(node.getStartLineNumber(), firstLine(node));
}

/** `line N` of the node's start, as data (see frame). */
export function at(node: Node): At {
  return new At(node.getStartLineNumber());
}

/** A node's first line of text, trimmed and cut at 100 characters. */
function firstLine(node: Node): string {
  const first = node.getText().split("\n")[0].trim();
  return first.length > 100 ? first.slice(0, 97) + "..." : first;
}

/** The candidate whose first line is most similar to the expected shape (bigram Dice score). */
export function nearestCandidate(nodes: Node[], shape: string): Node | null {
  let best: Node | null = null;
  let bestScore = 0;
  const target = bigrams(shape);
  for (const node of nodes) {
    const score = dice(target, bigrams(node.getText().split("\n")[0].slice(0, 160)));
    if (score > bestScore) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

function bigrams(s: string): Map<string, number> {
  const out = new Map<string, number>();
  const t = s.toLowerCase().replace(/\s+/g, " ");
  for (let i = 0; i < t.length - 1; i++) {
    const g = t.slice(i, i + 2);
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

function dice(a: Map<string, number>, b: Map<string, number>): number {
  let inter = 0;
  let total = 0;
  for (const [g, n] of a) {
    inter += Math.min(n, b.get(g) ?? 0);
    total += n;
  }
  for (const n of b.values()) total += n;
  return total === 0 ? 0 : (2 * inter) / total;
}

// ── Common anchors ──────────────────────────────────────────────────────────

/** The string value of a string literal / no-substitution template, quote style ignored. */
export function stringValue(node: Node | undefined): string | null {
  if (!node) return null;
  if (Node.isStringLiteral(node) || Node.isNoSubstitutionTemplateLiteral(node)) return node.getLiteralValue();
  return null;
}

/** `callee(...)` where callee's text (whitespace-insensitive) is `callee`, optionally with a first string argument. */
export function callAnchor(callee: string, firstArg?: string | RegExp): Anchor<import("ts-morph").CallExpression> {
  const want = callee.replace(/\s+/g, "");
  const argShape = firstArg === undefined ? "…" : typeof firstArg === "string" ? `${JSON.stringify(firstArg)}, …` : `${firstArg}, …`;
  return {
    shape: `call ${callee}(${argShape})`,
    kind: SyntaxKind.CallExpression,
    match: (n): n is import("ts-morph").CallExpression => {
      if (!Node.isCallExpression(n)) return false;
      if (n.getExpression().getText().replace(/\s+/g, "") !== want) return false;
      if (firstArg === undefined) return true;
      const v = stringValue(n.getArguments()[0]);
      return v !== null && (typeof firstArg === "string" ? v === firstArg : firstArg.test(v));
    },
  };
}

/** `const name = …` (a variable declaration by name). */
export function variableAnchor(name: string): Anchor<import("ts-morph").VariableDeclaration> {
  return {
    shape: `const ${name} = …`,
    kind: SyntaxKind.VariableDeclaration,
    match: (n): n is import("ts-morph").VariableDeclaration => Node.isVariableDeclaration(n) && n.getName() === name,
  };
}

/** `function name(…) { … }` (a function declaration by name). */
export function functionAnchor(name: string): Anchor<import("ts-morph").FunctionDeclaration> {
  return {
    shape: `function ${name}(…) { … }`,
    kind: SyntaxKind.FunctionDeclaration,
    match: (n): n is import("ts-morph").FunctionDeclaration => Node.isFunctionDeclaration(n) && n.getName() === name,
  };
}

/** A method of a class by name. */
export function methodAnchor(name: string): Anchor<import("ts-morph").MethodDeclaration> {
  return {
    shape: `method ${name}(…) { … }`,
    kind: SyntaxKind.MethodDeclaration,
    match: (n): n is import("ts-morph").MethodDeclaration => Node.isMethodDeclaration(n) && n.getName() === name,
  };
}
