// GET /api/sessions/:id sends a bounded page of the session's events instead of all of them: the
// newest `events_limit` (default 200, at most 1000), `events_total` so the caller knows more exist,
// and `events_next_before` (an event id) to ask for the next older page with `events_before=<id>`. The
// cursor is the (created_at, id) of that event, the order the page is sorted in, so a page stays
// exact while agents keep adding events (an offset would shift under them). Bad values are a 400.
// Upstream's session page already pages its timeline through GET /api/events?session_id=…; it reads
// only session, agents and workflows from this answer, so no client change is needed.
// Where the handler also fed the whole list to the task snapshot, it gets the session's Task events
// (the module's taskEventsForSession, what the session list uses), the only events the snapshot reads.
// The Workflows page's session drill-in (GET /api/workflows/session/:id, where the release has it) read
// every event of the session too, for its tool timeline: it reads the newest 5000 (upstream's own bound
// for a workflow run's events), in the order it had.
import { Node, SyntaxKind, type ArrowFunction, type BindingElement, type CallExpression, type FunctionExpression, type SourceFile } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { callAnchor, findAll, findOne, frame, functionAnchor, stringValue } from "./lib/find.ts";
import { functionsByName, isDeclarationName, reachChain } from "./lib/reach.ts";
import { sqlLiteral, sqlText } from "./lib/sqlite.ts";

const ID = "bound-session-detail";
const M = marker(ID);
const ROUTE = "server/routes/sessions.js";
const DB = "server/db.js";
const PAGE_FN = "sessionEventsPage";
const QUERY_FN = "sessionEventsQuery";
const DETAIL = callAnchor("router.get", "/:id");
const WORKFLOWS = "server/routes/workflows.js";
const DRILL_IN = callAnchor("router.get", "/session/:id");
const DRILL_IN_MAX = 5000;

/**
 * Reviewed statements that read a session's events without LIMIT on a GET path but never send them:
 * name (in db.js's statements) -> why it is bounded enough.
 */
export const READ_NOT_SENT: Record<string, string> = {
  listTaskEventsBySession: "TaskCreated/TaskCompleted only, folded into todo_snapshot/todo_summary, never sent",
};

const HELPERS = `${M}
// Session detail sends a page of the session's events, newest first: events_limit (default 200, at
// most 1000) and a cursor, events_before=<event id> (events_next_before of the previous page), on
// (created_at, id), the page's order, so paging stays exact while agents add events. Upstream sent
// them all (41 MB on a long session), again on every reload of the open page.
const SESSION_EVENTS_DEFAULT = 200;
const SESSION_EVENTS_MAX = 1000;

function ${QUERY_FN}(query) {
  const int = (name) => {
    const raw = query[name];
    if (raw === undefined) return { value: null };
    if (typeof raw !== "string" || !/^[0-9]{1,15}$/.test(raw) || Number(raw) < 1) {
      return { error: \`\${name} must be a positive integer (got \${JSON.stringify(raw)})\` };
    }
    return { value: Number(raw) };
  };
  const limit = int("events_limit");
  if (limit.error) return limit;
  const before = int("events_before");
  if (before.error) return before;
  return { limit: Math.min(limit.value ?? SESSION_EVENTS_DEFAULT, SESSION_EVENTS_MAX), before: before.value };
}

function ${PAGE_FN}(sessionId, { limit, before }) {
  const total = db.prepare("SELECT COUNT(*) AS count FROM events WHERE session_id = ?").get(sessionId).count;
  let rows;
  if (before === null) {
    rows = db
      .prepare("SELECT * FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC LIMIT ?")
      .all(sessionId, limit + 1);
  } else {
    const cursor = db.prepare("SELECT id, created_at FROM events WHERE id = ? AND session_id = ?").get(before, sessionId);
    if (!cursor) return { error: \`events_before: event \${before} is not an event of this session (pass events_next_before of a previous page)\` };
    rows = db
      .prepare(
        "SELECT * FROM events WHERE session_id = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
      )
      .all(sessionId, cursor.created_at, cursor.id, limit + 1);
  }
  const more = rows.length > limit;
  const events = more ? rows.slice(0, limit) : rows;
  return { events, total, limit, nextBefore: more ? events[events.length - 1].id : null };
}

function badEventsPage(res, message) {
  return res.status(400).json({ error: { code: "INVALID_INPUT", message } });
}

`;

type Handler = ArrowFunction | FunctionExpression;

/** The handler of router.get("/:id", …): its last argument, a function with a block body. */
function detailHandler(file: PatchFile | VerifyFile): Handler {
  const route = findOne(ID, file, DETAIL);
  const fn = route.getArguments().at(-1);
  if (!fn || !(Node.isArrowFunction(fn) || Node.isFunctionExpression(fn)) || !Node.isBlock(fn.getBody())) {
    throw new PatchTargetError(ID, file.path, 'router.get("/:id", (req, res) => { … }) with an inline handler', 0, `The handler is ${fn ? fn.getText().split("\n")[0] : "missing"}.`, { line: route.getStartLineNumber(), text: route.getText().split("\n")[0] });
  }
  return fn;
}

/** `res.json({ … events … })` in the handler: the answer the page is put in. */
function answerOf(file: PatchFile, handler: Handler): CallExpression {
  return findOne(ID, file, {
    ...callAnchor("res.json"),
    shape: "call res.json({ session, agents, events, … }) in the /:id handler",
    within: handler,
    match: (n): n is CallExpression => {
      if (!Node.isCallExpression(n) || n.getExpression().getText() !== "res.json") return false;
      const obj = n.getArguments()[0];
      return !!obj && Node.isObjectLiteralExpression(obj) && !!obj.getProperty("events");
    },
  });
}

/** In the drill-in handler: `x.prepare("SELECT * FROM events WHERE … session_id … ORDER BY …")` with no LIMIT. */
function unboundedPrepares(file: PatchFile | VerifyFile, within: Node): CallExpression[] {
  return findAll(file, {
    shape: 'call db.prepare("SELECT * FROM events WHERE session_id = ? ORDER BY …") in GET /session/:id',
    kind: SyntaxKind.CallExpression,
    within,
    match: (n): n is CallExpression => {
      if (!Node.isCallExpression(n) || !/\.prepare$/.test(n.getExpression().getText())) return false;
      const lit = sqlLiteral(file, n.getArguments()[0]);
      return !!lit && unboundedSessionEvents(sqlText(lit)) !== null;
    },
  });
}

function applyDrillIn(file: PatchFile): void {
  const handler = findOne(ID, file, DRILL_IN).getArguments().at(-1)!;
  const prepares = unboundedPrepares(file, handler);
  if (prepares.length !== 1) findOne(ID, file, { shape: 'call db.prepare("SELECT * FROM events WHERE session_id = ? ORDER BY …") in GET /session/:id', kind: SyntaxKind.CallExpression, within: handler, match: (n): n is CallExpression => prepares.includes(n as CallExpression) });
  const lit = prepares[0].getArguments()[0];
  const sql = sqlText(lit).replace(/\s+/g, " ").trim();
  const m = /^SELECT \* FROM events (WHERE .*?) ORDER BY (.*)$/i.exec(sql);
  if (!m || !(Node.isStringLiteral(lit) || Node.isNoSubstitutionTemplateLiteral(lit))) {
    throw new PatchTargetError(ID, file.path, '"SELECT * FROM events WHERE … ORDER BY …" as one literal', 0, "The drill-in's events query changed shape.", { line: lit.getStartLineNumber(), text: lit.getText().split("\n")[0] });
  }
  const bounded = `SELECT * FROM (SELECT * FROM events ${m[1]} ORDER BY created_at DESC, id DESC LIMIT ${DRILL_IN_MAX}) ORDER BY ${m[2]}`;
  file.edit.overwrite(lit.getStart(), lit.getEnd(), `${M} /* the newest ${DRILL_IN_MAX}, not every event of the session */ ${JSON.stringify(bounded)}`);
}

function apply(file: PatchFile): void {
  if (file.path === WORKFLOWS) return applyDrillIn(file);
  // the page helpers query through the module's `db` (const { stmts, db } = require("../db"))
  findOne(ID, file, {
    shape: 'const { db, … } = require("../db")',
    kind: SyntaxKind.BindingElement,
    match: (n): n is BindingElement => Node.isBindingElement(n) && n.getName() === "db" && n.getFirstAncestorByKind(SyntaxKind.VariableStatement)?.getParent() === file.ast,
  });
  const handler = detailHandler(file);
  const route = handler.getParentOrThrow() as CallExpression;
  const routeStmt = route.getFirstAncestorByKindOrThrow(SyntaxKind.ExpressionStatement);
  const list = findOne(ID, file, { ...callAnchor("stmts.listEventsBySession.all"), within: handler });
  const decl = list.getParentIfKind(SyntaxKind.VariableDeclaration);
  if (!decl || decl.getName() !== "events") {
    throw new PatchTargetError(ID, file.path, "const events = stmts.listEventsBySession.all(req.params.id)", 0, "The full list is no longer bound to `events`.", { line: list.getStartLineNumber(), text: list.getParentOrThrow().getText().split("\n")[0] });
  }
  const answer = answerOf(file, handler);
  const idArg = list.getArguments()[0]?.getText() ?? "req.params.id";

  // Every other use of the full list must be one we know how to keep whole.
  const uses = handler.getDescendantsOfKind(SyntaxKind.Identifier).filter((i) => i.getText() === "events" && i !== decl.getNameNode() && !isDeclarationName(i));
  for (const use of uses) {
    const parent = use.getParentOrThrow();
    if (Node.isShorthandPropertyAssignment(parent) && parent.getParent() === answer.getArguments()[0]) continue;
    const call = parent.getParentIfKind(SyntaxKind.CallExpression) ?? (Node.isCallExpression(parent) ? parent : undefined);
    if (call && call.getExpression().getText() === "taskProgressForSession" && call.getArguments().includes(use)) {
      findOne(ID, file, functionAnchor("taskEventsForSession"));
      file.edit.overwrite(use.getStart(), use.getEnd(), `${M} taskEventsForSession(${idArg})`);
      continue;
    }
    throw new PatchTargetError(ID, file.path, "known use of `events` in the /:id handler (the answer, or taskProgressForSession(…, events))", 0, "A use of the full event list the patch does not know: would it need every event?", { line: use.getStartLineNumber(), text: parent.getText().split("\n")[0] });
  }

  file.edit.appendLeft(routeStmt.getStart(true), HELPERS);
  const body = handler.getBody() as import("ts-morph").Block;
  file.edit.appendLeft(
    body.getStart() + 1,
    `\n  ${M} // a bad events_limit / events_before is a 400 before anything is read\n` +
      `  const eventsQuery = ${QUERY_FN}(req.query);\n  if (eventsQuery.error) return badEventsPage(res, eventsQuery.error);`,
  );
  file.edit.overwrite(list.getStart(), list.getEnd(), "eventsPage.events");
  const stmt = decl.getFirstAncestorByKindOrThrow(SyntaxKind.VariableStatement);
  file.edit.appendLeft(stmt.getStart(), `${M} const eventsPage = ${PAGE_FN}(${idArg}, eventsQuery);\n  if (eventsPage.error) return badEventsPage(res, eventsPage.error);\n  `);
  const obj = answer.getArguments()[0] as import("ts-morph").ObjectLiteralExpression;
  const last = obj.getProperties().at(-1)!;
  file.edit.appendLeft(last.getEnd(), `, ${M} events_total: eventsPage.total, events_limit: eventsPage.limit, events_next_before: eventsPage.nextBefore`);
}

// ── The property: no GET route sends a session's events without a LIMIT ───────────────────────────

/** `text` with everything inside parentheses blanked (the parentheses kept): the statement's own level. */
function topLevel(sql: string): string {
  let depth = 0;
  let out = "";
  for (const ch of sql) {
    if (ch === ")") depth--;
    out += depth > 0 ? " " : ch;
    if (ch === "(") depth++;
  }
  return out;
}

const AGGREGATE = /\b(count|sum|min|max|avg|total|group_concat)\s*\(/i;

/**
 * Why a SELECT is a session's events without bound, else null: its own level reads FROM events,
 * filters on session_id, returns rows (no aggregate, no GROUP BY) and has no LIMIT.
 */
export function unboundedSessionEvents(sql: string): string | null {
  const flat = sql.replace(/'(?:[^']|'')*'/g, "''").replace(/\s+/g, " ").trim();
  const top = topLevel(flat);
  const m = /^SELECT\b(.*?)\bFROM\s+events\b/i.exec(top);
  if (!m) return null;
  if (/\bFROM\b/i.test(m[1]) || AGGREGATE.test(m[1])) return null;
  if (/\bGROUP\s+BY\b|\bLIMIT\b/i.test(top)) return null;
  const where = /\bWHERE\b(.*)$/i.exec(top);
  if (!where || !/\b(\w+\.)?session_id\s*(=|\bIN\b)/i.test(where[1])) return null;
  return flat.length > 90 ? flat.slice(0, 87) + "..." : flat;
}

/** db.js's prepared statements by name (`name: db.prepare(<sql>)`), with their SQL. */
function statementSql(tree: TreeView): Map<string, string> {
  const out = new Map<string, string>();
  if (!tree.jsFiles.includes(DB)) return out;
  const file = tree.file(DB);
  for (const p of file.ast.getDescendantsOfKind(SyntaxKind.PropertyAssignment)) {
    const init = p.getInitializer();
    if (!init || !Node.isCallExpression(init) || !/\.prepare$/.test(init.getExpression().getText())) continue;
    const lit = sqlLiteral(file, init.getArguments()[0]);
    if (lit) out.set(p.getName(), sqlText(lit));
  }
  return out;
}

/** The SQL a `.all(…)`/`.iterate(…)` call runs: `x.prepare(<sql>).all` or `stmts.<name>.all`; with the statement's name. */
function rowsCallSql(file: VerifyFile, n: Node, stmts: Map<string, string>): { sql: string; name?: string } | null {
  if (!Node.isCallExpression(n)) return null;
  const callee = n.getExpression();
  if (!Node.isPropertyAccessExpression(callee) || !["all", "iterate"].includes(callee.getName())) return null;
  const recv = callee.getExpression();
  if (Node.isCallExpression(recv) && /\.prepare$/.test(recv.getExpression().getText())) {
    const lit = sqlLiteral(file, recv.getArguments()[0]);
    return lit ? { sql: sqlText(lit) } : null;
  }
  if (Node.isPropertyAccessExpression(recv) && recv.getExpression().getText() === "stmts" && stmts.has(recv.getName())) return { sql: stmts.get(recv.getName())!, name: recv.getName() };
  return null;
}

const ROUTE_CALL = /^(router|app|\w+Router)\.(get|all)$/;

interface GetRoute {
  file: string;
  line: number;
  path: string;
  handlers: Node[];
  sf: SourceFile;
  vf: VerifyFile;
}

function getRoutes(tree: TreeView): GetRoute[] {
  const out: GetRoute[] = [];
  for (const f of tree.jsFiles) {
    if (!f.startsWith("server/") || !/\bevents\b/i.test(tree.text(f)) || !/\.(get|all)\s*\(/.test(tree.text(f))) continue;
    const vf = tree.file(f);
    for (const c of vf.ast.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      if (!ROUTE_CALL.test(c.getExpression().getText())) continue;
      const p = stringValue(c.getArguments()[0]);
      if (p === null) continue;
      out.push({ file: f, line: c.getStartLineNumber(), path: p, handlers: c.getArguments().slice(1), sf: vf.ast, vf });
    }
  }
  return out;
}

function checkTree(tree: TreeView): { problems: string[]; routes: number; reviewed: Set<string> } {
  const stmts = statementSql(tree);
  const problems: string[] = [];
  const reviewed = new Set<string>();
  const routes = getRoutes(tree);
  const fnsOf = new Map<SourceFile, Map<string, Node>>();
  for (const r of routes) {
    const fns = fnsOf.get(r.sf) ?? functionsByName(r.sf);
    fnsOf.set(r.sf, fns);
    let sql = "";
    const hit = (n: Node): boolean => {
      const q = rowsCallSql(r.vf, n, stmts);
      const why = q && unboundedSessionEvents(q.sql);
      if (!q || !why) return false;
      if (q.name && READ_NOT_SENT[q.name]) {
        reviewed.add(q.name);
        return false;
      }
      sql = `${q.name ? `stmts.${q.name}: ` : ""}${why}`;
      return true;
    };
    for (const h of r.handlers) {
      const chain = reachChain(h, { fns, hit });
      if (chain) problems.push(`${r.file}:${r.line} GET ${r.path} reads a session's events without LIMIT: ${chain} (${sql})`);
    }
  }
  return { problems, routes: routes.length, reviewed };
}

export default definePatch({
  id: ID,
  description: "GET /api/sessions/:id sends the newest events_limit events (default 200, max 1000) with events_total and an events_before cursor, not every event of the session; bad values are a 400.",
  why:
    "Session detail sent every event of the session: a peer measured 41 MB on a long session (upstream PR #222), read, encoded and sent on " +
    "the event loop that answers the hooks, again on each reload of the open session page while its agents work (issue #13).",
  removeWhen: "Upstream's GET /api/sessions/:id bounds the events it sends.",
  targets: [ROUTE],
  optionalTargets: [WORKFLOWS],
  apply,
  verify(file) {
    if (file.path === WORKFLOWS) {
      const route = findAll(file, DRILL_IN)[0];
      return route ? unboundedPrepares(file, route).map((c) => finding`GET /session/:id still reads every event of the session: ${frame(c)}`) : [];
    }
    const problems: Finding[] = [];
    const names = new Set(file.ast.getFunctions().map((f) => f.getName()));
    for (const fn of [QUERY_FN, PAGE_FN]) if (!names.has(fn)) problems.push(`no function ${fn}: session detail does not page its events`);
    let handler: Handler;
    try {
      handler = detailHandler(file);
    } catch (err) {
      return [...problems, err instanceof PatchTargetError ? err.finding() : (err as Error).message];
    }
    const calls = handler.getDescendantsOfKind(SyntaxKind.CallExpression).map((c) => c.getExpression().getText());
    if (!calls.includes(QUERY_FN)) problems.push(`GET /:id does not validate events_limit/events_before (${QUERY_FN}(req.query))`);
    if (!calls.includes(PAGE_FN)) problems.push(`GET /:id does not read a page of events (${PAGE_FN})`);
    const full = handler.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => c.getExpression().getText() === "stmts.listEventsBySession.all");
    for (const c of full) problems.push(finding`GET /:id still reads every event: ${frame(c)}`);
    if (!/events_total:/.test(handler.getText())) problems.push("GET /:id does not answer events_total");
    return problems;
  },
  verifyTree: (tree) => checkTree(tree).problems,
  reportTree(tree) {
    const { routes, reviewed } = checkTree(tree);
    const why = [...reviewed].map((n) => `${n} (${READ_NOT_SENT[n]})`).join("; ");
    return [`${routes} GET routes under server/ that mention events checked: none sends a session's events without LIMIT${why ? `; read, not sent: ${why}` : ""}`];
  },
});
