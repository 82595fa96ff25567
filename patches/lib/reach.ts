// What a function reaches through the functions of its own module: the chain to the first node a
// predicate matches (a write, a call of the hook-event writer…), followed transitively.
import { Node, type SourceFile, SyntaxKind } from "ts-morph";
import { type Found, finding } from "./errors.ts";
import { frame } from "./find.ts";

/**
 * Functions by name: module-level declarations, `const f = (…) => …` / `function (…) {…}`, and
 * `const f = x.transaction(fn)` (its fn: calling f runs it); with those declared inside `within` too.
 */
export function functionsByName(sf: SourceFile, within?: Node): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const scope of within ? [sf, within] : [sf]) {
    const local = scope !== sf;
    for (const fd of scope.getDescendantsOfKind(SyntaxKind.FunctionDeclaration)) if (fd.getName() && (local || fd.getParent() === sf)) out.set(fd.getName()!, fd);
    for (const d of scope.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) {
      if (!local && d.getVariableStatement()?.getParent() !== sf) continue;
      const init = d.getInitializer();
      if (!init || !Node.isIdentifier(d.getNameNode())) continue;
      if (Node.isArrowFunction(init) || Node.isFunctionExpression(init)) out.set(d.getName(), init);
      else if (Node.isCallExpression(init) && /\.transaction$/.test(init.getExpression().getText().replace(/\s+/g, "")) && init.getArguments()[0]) out.set(d.getName(), init.getArguments()[0]);
    }
  }
  return out;
}

/** An identifier that names a declaration or a property, not a use of a binding. */
export function isDeclarationName(id: Node): boolean {
  const parent = id.getParent();
  if (!parent) return false;
  if ((Node.isFunctionDeclaration(parent) || Node.isVariableDeclaration(parent) || Node.isParameterDeclaration(parent)) && parent.getNameNode() === id) return true;
  return (Node.isPropertyAccessExpression(parent) || Node.isPropertyAssignment(parent)) && parent.getNameNode() === id;
}

export interface Reach {
  fns: Map<string, Node>;
  hit: (n: Node) => boolean;
  memo?: Map<Node, Found | null>;
}

/**
 * The first node under `node` that `hit` matches, directly or inside a function of `fns` that it
 * calls or passes on (any use of the name counts), as `f → g → line N: text` (a Finding: the line is data); null when none.
 */
export function reachChain(node: Node, r: Reach, stack = new Set<Node>()): Found | null {
  const memo = (r.memo ??= new Map());
  if (memo.has(node)) return memo.get(node)!;
  if (stack.has(node)) return null;
  stack.add(node);
  let found: Found | null = null;
  for (const d of [node, ...node.getDescendants()]) {
    if (r.hit(d)) {
      found = finding`${frame(d)}`;
      break;
    }
    const fn = Node.isIdentifier(d) && !isDeclarationName(d) ? r.fns.get(d.getText()) : undefined;
    if (fn && fn !== node) {
      const inner = reachChain(fn, r, stack);
      if (inner) {
        found = finding`${d.getText()} → ${inner}`;
        break;
      }
    }
  }
  stack.delete(node);
  memo.set(node, found);
  return found;
}
