// The Dashboard's reload (on every agent/session frame, at most one a second through coalesced())
// makes one request where upstream makes seven or more:
// - the agents of all active sessions in one GET /api/agents?session_id=<id>,<id>,… instead of one
//   per session (session ids are UUIDs and never hold a comma, so a single id means what it meant);
// - the working and the waiting agents in one GET /api/agents?status=working,waiting, split back
//   into the two lists (byStatus);
// - the slow-changing lists (stats, total cost, recent events, which new_event frames already update
//   in place, the active sessions' rows the agent cards decorate, the subagents of the active
//   sessions) at most once per SLOW_MS (slowly), just under upstream's own 10 s poll.
import { Node, SyntaxKind, type ArrayLiteralExpression, type CallExpression, type ObjectLiteralExpression } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { at, callAnchor, findAll, findOne, findOptional, stringValue } from "./lib/find.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { COALESCE_FILE } from "./coalesce-page-reloads.ts";

const ID = "dashboard-agents-one-request";
const M = marker(ID);
const ROUTE = "server/routes/agents.js";
const DASHBOARD = "client/src/pages/Dashboard.tsx";
const ONE_ID_CLAUSE = callAnchor("clauses.push", "a.session_id = ?");
const ONE_STATUS_CLAUSE = callAnchor("clauses.push", "a.status = ?");
const LIST_CLAUSE = "a.session_id IN (";
const STATUS_LIST_CLAUSE = "a.status IN (";
const AGENT_STATUS_LISTS = ["working", "waiting"] as const;
const HELPERS_IMPORT = `import { byStatus, slowly } from "../lib/coalesce";`;

type AnyFile = VerifyFile | PatchFile;

/** Promise.all(xs.map((x) => api.….list(…))): one request per element. */
function perItemRequests(file: AnyFile): CallExpression[] {
  return findAll(file, callAnchor("Promise.all")).filter((c) => {
    const arg = c.getArguments()[0];
    return !!arg && Node.isCallExpression(arg) && /\.map$/.test(arg.getExpression().getText()) && /\bapi\.[\w.]+\(/.test(arg.getText());
  });
}

/** The `x.push(y);` statement right after `stmt`, or a findOne error naming the nearest candidate. */
function paramsPushAfter(file: PatchFile, stmt: Node, arg: string): Node {
  const next = stmt.getNextSibling();
  if (!next || next.getText().replace(/\s/g, "") !== `params.push(${arg});`) findOne(ID, file, callAnchor("params.push", arg));
  return next!;
}

function applyRoute(file: PatchFile): void {
  const push = findOne(ID, file, ONE_ID_CLAUSE);
  const stmt = push.getFirstAncestorByKindOrThrow(SyntaxKind.ExpressionStatement);
  file.edit.overwrite(stmt.getStart(), paramsPushAfter(file, stmt, "session_id").getEnd(),
    `${M} // a comma-separated list of sessions in one request (the Dashboard's active sessions)\n` +
    `      const sessionIds = String(session_id).split(",").filter(Boolean);\n` +
    `      clauses.push(\`${LIST_CLAUSE}\${sessionIds.map(() => "?").join(", ")})\`);\n` +
    `      params.push(...sessionIds);`);

  // A list of statuses (the Dashboard's working and waiting agents in one request).
  const statusPush = findOne(ID, file, ONE_STATUS_CLAUSE);
  const statusStmt = statusPush.getFirstAncestorByKindOrThrow(SyntaxKind.ExpressionStatement);
  file.edit.overwrite(statusStmt.getStart(), paramsPushAfter(file, statusStmt, "status").getEnd(),
    `${M} // a comma-separated list of statuses in one request (the Dashboard's working and waiting agents)\n` +
    `      const statuses = String(status).split(",").filter(Boolean);\n` +
    `      clauses.push(\`${STATUS_LIST_CLAUSE}\${statuses.map(() => "?").join(", ")})\`);\n` +
    `      params.push(...statuses);`);
  // The clause list is one branch (`if (session_id || sources || providers)`); a status-only
  // request takes a one-status statement: send a list through the clause branch.
  const branch = statusPush.getAncestors().filter(Node.isIfStatement)[1];
  if (branch && branch.getExpression().getText().includes("session_id")) {
    const cond = branch.getExpression();
    file.edit.appendLeft(cond.getEnd(), ` || ${M} String(status || "").includes(",")`);
  }
  // The in-memory transient cards come with the waiting list, also when it is one of several.
  const waiting = findOptional(ID, file, {
    shape: 'status === "waiting"',
    kind: SyntaxKind.BinaryExpression,
    match: (n): n is import("ts-morph").BinaryExpression =>
      Node.isBinaryExpression(n) && n.getOperatorToken().getKind() === SyntaxKind.EqualsEqualsEqualsToken && n.getLeft().getText() === "status" && stringValue(n.getRight()) === "waiting",
  });
  if (waiting) file.edit.overwrite(waiting.getStart(), waiting.getEnd(), `${M} String(status).split(",").includes("waiting")`);
}

/** `api.agents.list({ status: "<s>", … })`: its status and object literal, or null. */
function statusListCall(node: Node): { status: string; options: ObjectLiteralExpression } | null {
  if (!Node.isCallExpression(node) || node.getExpression().getText().replace(/\s/g, "") !== "api.agents.list") return null;
  const options = node.getArguments()[0];
  if (!options || !Node.isObjectLiteralExpression(options)) return null;
  const prop = options.getProperty("status");
  const status = prop && Node.isPropertyAssignment(prop) ? stringValue(prop.getInitializer()) : null;
  return status ? { status, options } : null;
}

/** The array of the load's Promise.all that holds the working and waiting agent lists. */
function reloadArray(file: AnyFile): ArrayLiteralExpression | null {
  for (const call of findAll(file, callAnchor("Promise.all"))) {
    const arr = call.getArguments()[0];
    if (arr && Node.isArrayLiteralExpression(arr) && arr.getElements().some((e) => statusListCall(e)?.status === AGENT_STATUS_LISTS[0])) return arr;
  }
  return null;
}

const numberProp = (o: ObjectLiteralExpression, name: string): number | null => {
  const p = o.getProperty(name);
  return p && Node.isPropertyAssignment(p) && Node.isNumericLiteral(p.getInitializer()!) ? Number(p.getInitializer()!.getText()) : null;
};
const hasTrueProp = (o: ObjectLiteralExpression, name: string) => {
  const p = o.getProperty(name);
  return !!p && Node.isPropertyAssignment(p) && p.getInitializer()?.getText() === "true";
};

/** The name of the function the reload's Promise.all sits in (`const load = useCallback(async () => …)`). */
function loaderName(arr: Node): string | null {
  for (const d of arr.getAncestors().filter(Node.isVariableDeclaration)) if (Node.isIdentifier(d.getNameNode())) return d.getName();
  return null;
}

function applyDashboard(file: PatchFile): void {
  const calls = perItemRequests(file);
  const shape = "call Promise.all(activeSessionIds.map((sid) => api.agents.list({ session_id: sid, … })))";
  if (calls.length !== 1) findOne(ID, file, { ...callAnchor("Promise.all"), shape, match: (n): n is CallExpression => calls.includes(n as CallExpression) });
  const map = calls[0].getArguments()[0] as CallExpression;
  const ids = (map.getExpression() as import("ts-morph").PropertyAccessExpression).getExpression().getText();
  if (!/api\.agents\.list\(\s*\{\s*session_id:/.test(map.getText())) findOne(ID, file, { ...callAnchor("Promise.all"), shape, match: (n): n is CallExpression => false });

  const arr = reloadArray(file);
  const arrShape = `call Promise.all([…, api.agents.list({ status: "${AGENT_STATUS_LISTS[0]}", … }), api.agents.list({ status: "${AGENT_STATUS_LISTS[1]}", … }), …]) (the reload)`;
  if (!arr) findOne(ID, file, { ...callAnchor("Promise.all"), shape: arrShape, match: (n): n is CallExpression => false });
  const elements = arr!.getElements();
  const at = elements.findIndex((e) => statusListCall(e)?.status === AGENT_STATUS_LISTS[0]);
  const lists = [elements[at], elements[at + 1]].map((e) => (e ? statusListCall(e) : null));
  const loader = loaderName(arr!);
  if (lists.some((l, i) => l?.status !== AGENT_STATUS_LISTS[i]) || !loader) {
    throw new PatchTargetError(ID, file.path, arrShape, 0, "Reordered or renamed upstream?", { line: arr!.getStartLineNumber(), text: arr!.getText().replace(/\s+/g, " ").slice(0, 160) });
  }
  const [working, waiting] = lists as Array<{ status: string; options: ObjectLiteralExpression }>;
  const limit = (o: ObjectLiteralExpression) => numberProp(o, "limit") ?? 100;
  const transient = hasTrueProp(working.options, "include_transient") || hasTrueProp(waiting.options, "include_transient");
  file.edit.overwrite(elements[at]!.getStart(), elements[at + 1]!.getEnd(),
    `${M} ...byStatus(api.agents.list({ status: "${AGENT_STATUS_LISTS.join(",")}", limit: ${limit(working.options) + limit(waiting.options)}${transient ? ", include_transient: true" : ""} }), ` +
    `["${working.status}", ${limit(working.options)}], ["${waiting.status}", ${limit(waiting.options)}])`);
  // Every other list of the reload: at most once per SLOW_MS.
  elements.forEach((e, i) => {
    if (i === at || i === at + 1 || !Node.isCallExpression(e)) return;
    const callee = e.getExpression().getText().replace(/\s/g, "");
    if (/^api\.\w+\.\w+$/.test(callee)) file.edit.overwrite(e.getStart(), e.getEnd(), `${M} slowly(${loader}, "${callee}#${i}", () => ${e.getText()})`);
  });
  // The subagents of the active sessions: at most once per SLOW_MS too (keyed by the set of sessions,
  // it changed on most reloads under load: agents go working, idle, waiting).
  file.edit.overwrite(map.getStart(), map.getEnd(),
    `${M} ${ids}.length === 0 ? [] : [slowly(${loader}, "api.agents.list#sessions", () => api.agents.list({ session_id: ${ids}.join(","), limit: 100 * ${ids}.length }))]`);
  const imports = file.ast.getImportDeclarations();
  file.edit.appendLeft(imports.length ? imports[imports.length - 1].getEnd() : 0, `\n${M}\n${HELPERS_IMPORT}`);
}

/** After the patch: the reload's lists other than the agents' that are asked for on every reload (not through slowly). */
function everyReloadLists(file: AnyFile): CallExpression[] {
  const out: CallExpression[] = [];
  for (const call of findAll(file, callAnchor("Promise.all"))) {
    const arr = call.getArguments()[0];
    if (!arr || !Node.isArrayLiteralExpression(arr) || !arr.getElements().some((e) => Node.isSpreadElement(e) && e.getText().includes("byStatus("))) continue;
    for (const e of arr.getElements()) if (Node.isCallExpression(e) && /^api\.\w+\.\w+$/.test(e.getExpression().getText().replace(/\s/g, ""))) out.push(e);
  }
  return out;
}

function verifyDashboard(file: AnyFile): Finding[] {
  const problems: Finding[] = perItemRequests(file).map((c) => finding`${at(c)}: one request per element (${c.getText().split("\n")[0].trim()})`);
  if (!/api\.agents\.list\(\{ session_id: \w+\.join\(","\)/.test(file.text)) problems.push("no single api.agents.list({ session_id: ids.join(\",\") }) request");
  const arr = reloadArray(file);
  if (arr) problems.push(finding`${at(arr)}: the reload asks for the ${AGENT_STATUS_LISTS.join(" and ")} agents one request each (not byStatus(api.agents.list({ status: "${AGENT_STATUS_LISTS.join(",")}" })))`);
  for (const c of everyReloadLists(file)) problems.push(finding`${at(c)}: the reload asks for ${c.getExpression().getText()} on every reload (not through slowly)`);
  if (!file.text.includes(HELPERS_IMPORT)) problems.push(`no import of byStatus and slowly from ${COALESCE_FILE}`);
  return problems;
}

export default definePatch({
  id: ID,
  description: "The Dashboard's reload asks for its agents in one request (GET /api/agents takes lists of session ids and statuses) and for its slow-changing lists at most once per 9 s",
  why: "Each Dashboard reload made 7 requests plus one per active session (stats, working agents, waiting agents, events, total cost, active sessions, subagents): 5.3 API requests a second at one reload a second with 22 agents, on the loop that answers hooks (issue #13).",
  removeWhen: "Upstream's Dashboard fetches its active agents in one request and its stats and cost at a slower cadence than its frame-driven reloads.",
  needs: ["coalesce-page-reloads"],
  targets: [ROUTE, DASHBOARD],
  apply(file) {
    if (file.path === ROUTE) applyRoute(file);
    else applyDashboard(file);
  },
  verify(file) {
    if (file.path === ROUTE) {
      return [LIST_CLAUSE, STATUS_LIST_CLAUSE].filter((c) => !file.text.includes(c)).map((c) => `GET /api/agents does not take a list (no "${c}" clause)`);
    }
    return verifyDashboard(file);
  },
  verifyTree(tree: TreeView) {
    const out: string[] = [];
    for (const f of tree.clientFiles) {
      if (f !== DASHBOARD) continue; // the Dashboard reloads on every frame; other pages' per-item loads are user actions
      const view = tree.file(f);
      for (const c of perItemRequests(view)) out.push(`${f}:${c.getStartLineNumber()} one request per element: ${c.getText().split("\n")[0].trim()}`);
      const arr = reloadArray(view);
      if (arr) out.push(`${f}:${arr.getStartLineNumber()} the reload asks for the ${AGENT_STATUS_LISTS.join(" and ")} agents one request each`);
      for (const c of everyReloadLists(view)) out.push(`${f}:${c.getStartLineNumber()} the reload asks for ${c.getExpression().getText()} on every reload (not through slowly)`);
    }
    return out;
  },
});
