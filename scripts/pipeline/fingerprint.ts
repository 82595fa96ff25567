// Semantic drift: a fingerprint of the upstream code around each patch anchor (the top-level
// function that encloses it), normalized so formatting and comments do not count, with one hash per
// statement of its body so a change can be summarized (statements added / removed / changed).
import { diffArrays } from "diff";
import { Node, type SourceFile, ts } from "ts-morph";
import { sha256 } from "../lib/hash.ts";

export interface Fingerprint {
  file: string;
  /** The enclosing unit's name: `watchdogCheck`, `CompatDatabase.transaction`, `router.post("/event") handler`. */
  function: string;
  /** Hash of the whole unit's normalized syntax tree. */
  hash: string;
  /** Hash of each top-level statement of the unit's body, in order. */
  statements: string[];
}

/** Per patch id, the upstream units its anchors sit in (sorted by file, then name). */
export type Fingerprints = Record<string, Fingerprint[]>;

export interface ReviewNote {
  patch: string;
  file: string;
  function: string;
  summary: string;
  /** `applies — re-review: <patch> <file> <function> changed upstream since <ref>: <summary>` */
  line: string;
}

const short = (s: string) => sha256(s).slice(0, 16);

/** The syntax tree as text: kinds plus identifier/literal/operator values; no trivia, no quotes style. */
function normalized(node: ts.Node): string {
  const out: string[] = [];
  const walk = (n: ts.Node) => {
    out.push("(", ts.SyntaxKind[n.kind]);
    if (ts.isIdentifier(n) || ts.isPrivateIdentifier(n)) out.push(":", n.text);
    else if (n.kind >= ts.SyntaxKind.FirstLiteralToken && n.kind <= ts.SyntaxKind.LastTemplateToken) out.push(":", JSON.stringify((n as ts.LiteralLikeNode).text));
    else if (ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) out.push(":", ts.SyntaxKind[n.operator]);
    else if (ts.isVariableDeclarationList(n)) out.push(":", String(n.flags & ts.NodeFlags.BlockScoped));
    ts.forEachChild(n, walk);
    out.push(")");
  };
  walk(node);
  return out.join("");
}

const isUnitFn = (n: Node) =>
  Node.isFunctionDeclaration(n) || Node.isFunctionExpression(n) || Node.isArrowFunction(n) || Node.isMethodDeclaration(n) || Node.isConstructorDeclaration(n) || Node.isGetAccessorDeclaration(n) || Node.isSetAccessorDeclaration(n);

/**
 * The unit around position `pos` of `sf`: the outermost function below module level that contains
 * it, else the top-level statement. Outermost, so a callback inside a function names the function.
 */
export function unitAt(sf: SourceFile, pos: number): Node | null {
  const hit = sf.getDescendantAtPos(pos);
  if (!hit || Node.isSourceFile(hit)) return null;
  const chain = [hit, ...hit.getAncestors()].filter((n) => !Node.isSourceFile(n));
  const fns = chain.filter(isUnitFn);
  if (fns.length > 0) return fns[fns.length - 1];
  // A module-level statement around one function (`const f = db.transaction((…) => {…})`,
  // `router.post("/x", (req, res) => {…})`): the function is the unit.
  const top = chain[chain.length - 1];
  if (!top) return null;
  const inner = outermostFunctions(top);
  return inner.length === 1 ? inner[0] : top;
}

function outermostFunctions(node: Node): Node[] {
  const out: Node[] = [];
  node.forEachChild((c) => {
    if (isUnitFn(c)) out.push(c);
    else out.push(...outermostFunctions(c));
  });
  return out;
}

function calleeLabel(call: Node): string {
  if (!Node.isCallExpression(call)) return call.getKindName();
  const first = call.getArguments()[0];
  const arg = first && (Node.isStringLiteral(first) || Node.isNoSubstitutionTemplateLiteral(first)) ? JSON.stringify(first.getLiteralValue()) : "";
  return `${call.getExpression().getText().replace(/\s+/g, "")}(${arg})`;
}

/** A name for the unit that survives line moves and reformatting. */
export function unitName(unit: Node): string {
  if (Node.isFunctionDeclaration(unit)) return unit.getName() ?? "default function";
  if (Node.isMethodDeclaration(unit) || Node.isGetAccessorDeclaration(unit) || Node.isSetAccessorDeclaration(unit) || Node.isConstructorDeclaration(unit)) {
    const cls = unit.getParent();
    const owner = Node.isClassDeclaration(cls) || Node.isClassExpression(cls) ? cls.getName() ?? "class" : "object";
    return `${owner}.${Node.isConstructorDeclaration(unit) ? "constructor" : unit.getName()}`;
  }
  if (Node.isFunctionExpression(unit) || Node.isArrowFunction(unit)) {
    let firstCall: Node | null = null;
    for (const a of unit.getAncestors()) {
      if (Node.isSourceFile(a)) break;
      if (Node.isVariableDeclaration(a) || Node.isPropertyAssignment(a)) return a.getName();
      if (Node.isBinaryExpression(a) && a.getOperatorToken().getKind() === ts.SyntaxKind.EqualsToken) return a.getLeft().getText().replace(/\s+/g, "");
      if (Node.isCallExpression(a) && !firstCall) firstCall = a;
    }
    return firstCall ? `${calleeLabel(firstCall)} handler` : "anonymous function";
  }
  if (Node.isVariableStatement(unit)) return `statement const ${unit.getDeclarations().map((d) => d.getName()).join(", ")}`;
  if (Node.isExpressionStatement(unit)) {
    const e = unit.getExpression();
    return `statement ${Node.isCallExpression(e) ? calleeLabel(e) : e.getText().replace(/\s+/g, " ").slice(0, 40)}`;
  }
  return `statement ${unit.getText().replace(/\s+/g, " ").slice(0, 40)}`;
}

/** The statements a summary counts: the body's top-level statements, or the unit itself. */
function bodyStatements(unit: Node): Node[] {
  if (isUnitFn(unit)) {
    const body = (unit as Node & { getBody?: () => Node | undefined }).getBody?.();
    if (!body) return [unit];
    if (!Node.isBlock(body)) return [body];
    const st = body.getStatements();
    // A body that is one try statement: count the statements inside it.
    if (st.length === 1 && Node.isTryStatement(st[0])) return [...st[0].getTryBlock().getStatements(), ...(st[0].getCatchClause() ? [st[0].getCatchClause()!] : [])];
    return st;
  }
  return [unit];
}

export function fingerprintUnit(file: string, unit: Node): Fingerprint {
  return {
    file,
    function: unitName(unit),
    hash: short(normalized(unit.compilerNode)),
    statements: bodyStatements(unit).map((s) => short(normalized(s.compilerNode))),
  };
}

/** Statements added / removed / changed between two statement-hash lists, as a short phrase. */
export function summarizeChange(before: string[], after: string[]): string {
  let added = 0;
  let removed = 0;
  let changed = 0;
  let pendingRemoved = 0;
  for (const part of diffArrays(before, after)) {
    if (part.removed) pendingRemoved += part.count ?? part.value.length;
    else if (part.added) {
      const n = part.count ?? part.value.length;
      const pair = Math.min(n, pendingRemoved);
      changed += pair;
      added += n - pair;
      removed += pendingRemoved - pair;
      pendingRemoved = 0;
    } else {
      removed += pendingRemoved;
      pendingRemoved = 0;
    }
  }
  removed += pendingRemoved;
  const parts = [
    added && `${added} statement${added > 1 ? "s" : ""} added`,
    removed && `${removed} removed`,
    changed && `${changed} changed`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(", ") : "signature or parameters changed";
}

/**
 * Units whose fingerprint differs from the reviewed one (same patch, file and name). A unit the
 * reviewed stamp does not know is not reported: it is new anchoring of ours, not upstream drift.
 */
export function compareFingerprints(reviewed: Fingerprints | undefined, now: Fingerprints, reviewedRef: string): ReviewNote[] {
  if (!reviewed) return [];
  const notes: ReviewNote[] = [];
  for (const [patch, units] of Object.entries(now)) {
    const old = new Map((reviewed[patch] ?? []).map((u) => [`${u.file}\0${u.function}`, u]));
    for (const u of units) {
      const before = old.get(`${u.file}\0${u.function}`);
      if (!before || before.hash === u.hash) continue;
      const summary = summarizeChange(before.statements, u.statements);
      notes.push({ patch, file: u.file, function: u.function, summary, line: `applies — re-review: ${patch} ${u.file} ${u.function} changed upstream since ${reviewedRef}: ${summary}` });
    }
  }
  return notes;
}

/** Deduplicate (a unit can hold several anchors; two units can share a name: suffix #2) and sort. */
export function collectUnits(file: string, units: Node[]): Fingerprint[] {
  const seen = new Set<Node>();
  const out: Fingerprint[] = [];
  const names = new Map<string, number>();
  for (const u of units.sort((a, b) => a.getStart() - b.getStart())) {
    if (seen.has(u)) continue;
    seen.add(u);
    const fp = fingerprintUnit(file, u);
    const n = (names.get(fp.function) ?? 0) + 1;
    names.set(fp.function, n);
    if (n > 1) fp.function = `${fp.function} #${n}`;
    out.push(fp);
  }
  return out;
}
