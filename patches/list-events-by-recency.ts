// GET /api/events lists the newest events first. The pages send a data scope by default (?providers=claude),
// which becomes `session_id IN (SELECT id FROM sessions WHERE provider IN (…))`; SQLite then serves the list
// through the session_id index, reads every event of every session in scope and sorts them all to keep 30
// (0.9 s on 150k events). Written `+session_id IN (…)` for the list only (the unary + keeps the term out of
// index choice), SQLite walks events newest first (created_at, id index) and stops at the limit (1.4 ms).
// The count keeps the session_id index: it counts every event in scope either way, and that is the
// cheaper walk.
import { Node, SyntaxKind, type CallExpression, type FunctionDeclaration, type TemplateExpression } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { At, finding, PatchTargetError } from "./lib/errors.ts";
import { callAnchor, findAll, findOne, functionAnchor, stringValue, variableAnchor } from "./lib/find.ts";

const ID = "list-events-by-recency";
const M = marker(ID);
const ROUTE = "server/routes/events.js";
const SCOPE_CALLS = ["sessionIdInSourcesClause", "sessionIdInProvidersClause"];
const RECENCY_COLUMN = `"+session_id"`;

/** Template literals listing events newest first with a LIMIT, their WHERE interpolated: [template, where identifier]. */
function recentEventListings(file: VerifyFile): [TemplateExpression, string][] {
  const out: [TemplateExpression, string][] = [];
  for (const t of file.ast.getDescendantsOfKind(SyntaxKind.TemplateExpression)) {
    const m = /\bFROM\s+events\s+\$\{\s*(\w+)\s*\}[^`]*ORDER\s+BY\s+created_at\s+DESC[^`]*\bLIMIT\b/i.exec(t.getText());
    if (m) out.push([t, m[1]]);
  }
  return out;
}

/** The call whose result declares `name` in the function around `at` (`const { sql: name } = f(…)` or `const name = f(…)`). */
function declaringCall(at: Node, name: string): CallExpression | null {
  const fn = at.getFirstAncestor((a) => Node.isArrowFunction(a) || Node.isFunctionExpression(a) || Node.isFunctionDeclaration(a)) ?? at.getSourceFile();
  for (const d of fn.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) {
    const names = Node.isIdentifier(d.getNameNode()) ? [d.getName()] : d.getNameNode().getDescendantsOfKind(SyntaxKind.BindingElement).map((b) => b.getName());
    const init = d.getInitializer();
    if (names.includes(name) && init && Node.isCallExpression(init)) return init;
  }
  return null;
}

/** Local functions whose scope clauses still let the planner pick the session_id index. */
function indexedScopeBuilders(file: VerifyFile): Set<string> {
  const out = new Set<string>();
  for (const fn of file.ast.getDescendantsOfKind(SyntaxKind.FunctionDeclaration)) {
    const calls = fn.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => SCOPE_CALLS.includes(c.getExpression().getText()));
    if (calls.some((c) => stringValue(c.getArguments()[1]) === "session_id") && fn.getName()) out.add(fn.getName()!);
  }
  return out;
}

/** `<line> …` for each newest-first events listing whose scope clause can take the session_id index. */
function listingProblems(file: VerifyFile): { line: number; message: string }[] {
  const builders = indexedScopeBuilders(file);
  const out: { line: number; message: string }[] = [];
  for (const [t, where] of recentEventListings(file)) {
    const call = declaringCall(t, where);
    if (!call) continue;
    const callee = call.getExpression().getText();
    const scoped = builders.has(callee) || SCOPE_CALLS.some((s) => call.getText().includes(s));
    if (scoped && !call.getText().includes(RECENCY_COLUMN)) {
      out.push({ line: t.getStartLineNumber(), message: `events listed newest first with a data-scope clause on session_id (${callee}(…) without scopeColumn ${RECENCY_COLUMN}): SQLite reads and sorts every event in scope` });
    }
  }
  return out;
}

function applyBuilder(file: PatchFile, fn: FunctionDeclaration): void {
  const param = fn.getParameters()[0];
  if (!param) findOne(ID, file, { ...functionAnchor("buildWhere"), shape: "function buildWhere(filters) { … } (one parameter)", match: (n): n is FunctionDeclaration => false });
  // v1.x scopes by source only (no provider filter yet): each scope call present is rewritten, at least one must be.
  const calls = SCOPE_CALLS.flatMap((name) => findAll(file, { ...callAnchor(name), within: fn }));
  if (calls.length === 0) findOne(ID, file, { ...callAnchor(SCOPE_CALLS[0]), within: fn });
  for (const call of calls) {
    const col = call.getArguments()[1];
    if (stringValue(col) !== "session_id") {
      const name = call.getExpression().getText();
      findOne(ID, file, { ...callAnchor(name), within: fn, shape: `call ${name}(…, "session_id") in buildWhere`, match: (n): n is CallExpression => false });
    }
    file.edit.overwrite(col!.getStart(), col!.getEnd(), `${M} ${param!.getName()}.scopeColumn || "session_id"`);
  }
}

function applyRoute(file: PatchFile): void {
  const builder = findOne(ID, file, functionAnchor("buildWhere"));
  applyBuilder(file, builder);
  const listSql = findOne(ID, file, variableAnchor("listSql"));
  const listings = recentEventListings(file).filter(([t]) => t.getParent() === listSql);
  if (listings.length !== 1) {
    throw new PatchTargetError(ID, file.path, "const listSql = `SELECT … FROM events ${whereSql} ORDER BY created_at DESC … LIMIT …`", listings.length, "The list query changed shape.", { line: listSql.getStartLineNumber(), text: listSql.getText().split("\n")[0] });
  }
  const [template, where] = listings[0];
  const call = declaringCall(template, where);
  if (!call || call.getExpression().getText() !== "buildWhere" || call.getArguments().length !== 1) {
    findOne(ID, file, { ...callAnchor("buildWhere"), within: listSql.getFirstAncestorByKind(SyntaxKind.ArrowFunction), shape: `const { sql: ${where} } = buildWhere(filters) beside listSql` , match: (n): n is CallExpression => false });
  }
  const stmt = call!.getFirstAncestorByKindOrThrow(SyntaxKind.VariableStatement);
  file.edit.appendLeft(stmt.getEnd(),
    `\n  ${M} // the list walks events newest first and stops at the limit; the count keeps the session_id index\n` +
    `  const { sql: listWhereSql } = buildWhere({ ...${call!.getArguments()[0].getText()}, scopeColumn: ${RECENCY_COLUMN} });`);
  const span = template.getTemplateSpans().find((s) => s.getExpression().getText() === where)!;
  file.edit.overwrite(span.getExpression().getStart(), span.getExpression().getEnd(), "listWhereSql");
}

export default definePatch({
  id: ID,
  description: "GET /api/events walks events newest first under the pages' data scope (+session_id IN (…)) instead of reading and sorting every event in scope.",
  why:
    "The Dashboard asks for /api/events?limit=30&providers=claude on each reload; on a history of 150k events SQLite served the provider scope " +
    "through the session_id index and sorted every event to keep 30: 0.9–1.3 s per call with no load, 60 % of the watched server's CPU " +
    "in a profile (issue #13).",
  removeWhen: "Upstream's event feed keeps the data-scope subquery out of the index choice (or the planner walks created_at under it).",
  targets: [ROUTE],
  apply: applyRoute,
  verify(file) {
    if (recentEventListings(file).length === 0) return ["no newest-first events listing (SELECT … FROM events ${…} ORDER BY created_at DESC … LIMIT) found"];
    return listingProblems(file).map((p) => finding`${new At(p.line)} ${p.message}`);
  },
  verifyTree(tree: TreeView) {
    const out: string[] = [];
    for (const f of tree.jsFiles) {
      if (!f.startsWith("server/") || f.includes("__tests__") || tree.isAdded(f)) continue;
      const text = tree.text(f);
      if (!/FROM\s+events/i.test(text) || !SCOPE_CALLS.some((s) => text.includes(s))) continue;
      for (const p of listingProblems(tree.file(f))) out.push(`${f}:${p.line} ${p.message}`);
    }
    return out;
  },
  reportTree(tree: TreeView) {
    let n = 0;
    for (const f of tree.jsFiles) if (f.startsWith("server/") && !f.includes("__tests__") && /FROM\s+events/i.test(tree.text(f))) n += recentEventListings(tree.file(f)).length;
    return [`${n} newest-first events listings with an interpolated WHERE checked: none takes the session_id index under a data scope`];
  },
});
