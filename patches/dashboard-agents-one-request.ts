// The Dashboard asks for the agents of all active sessions in one request instead of one per session:
// GET /api/agents?session_id=<id>,<id>,… (the server learns a comma-separated list; session ids are
// UUIDs and never hold a comma, so a single id means what it meant before).
import { Node, SyntaxKind, type CallExpression } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { callAnchor, findAll, findOne } from "./lib/find.ts";

const ID = "dashboard-agents-one-request";
const M = marker(ID);
const ROUTE = "server/routes/agents.js";
const DASHBOARD = "client/src/pages/Dashboard.tsx";
const ONE_ID_CLAUSE = callAnchor("clauses.push", "a.session_id = ?");
const LIST_CLAUSE = "a.session_id IN (";

/** Promise.all(xs.map((x) => api.….list(…))): one request per element. */
function perItemRequests(file: VerifyFile | PatchFile): CallExpression[] {
  return findAll(file, callAnchor("Promise.all")).filter((c) => {
    const arg = c.getArguments()[0];
    return !!arg && Node.isCallExpression(arg) && /\.map$/.test(arg.getExpression().getText()) && /\bapi\.[\w.]+\(/.test(arg.getText());
  });
}

function applyRoute(file: PatchFile): void {
  const push = findOne(ID, file, ONE_ID_CLAUSE);
  const stmt = push.getFirstAncestorByKindOrThrow(SyntaxKind.ExpressionStatement);
  const next = stmt.getNextSibling();
  if (!next || next.getText().replace(/\s/g, "") !== "params.push(session_id);") findOne(ID, file, callAnchor("params.push", "session_id"));
  file.edit.overwrite(stmt.getStart(), next!.getEnd(),
    `${M} // a comma-separated list of sessions in one request (the Dashboard's active sessions)\n` +
    `      const sessionIds = String(session_id).split(",").filter(Boolean);\n` +
    `      clauses.push(\`${LIST_CLAUSE}\${sessionIds.map(() => "?").join(", ")})\`);\n` +
    `      params.push(...sessionIds);`);
}

function applyDashboard(file: PatchFile): void {
  const calls = perItemRequests(file);
  if (calls.length !== 1) findOne(ID, file, { ...callAnchor("Promise.all"), shape: "call Promise.all(activeSessionIds.map((sid) => api.agents.list({ session_id: sid, … })))", match: (n): n is CallExpression => calls.includes(n as CallExpression) });
  const map = calls[0].getArguments()[0] as CallExpression;
  const ids = (map.getExpression() as import("ts-morph").PropertyAccessExpression).getExpression().getText();
  if (!/api\.agents\.list\(\s*\{\s*session_id:/.test(map.getText())) findOne(ID, file, { ...callAnchor("Promise.all"), shape: "call Promise.all(….map((sid) => api.agents.list({ session_id: sid, … })))", match: (n): n is CallExpression => false });
  file.edit.overwrite(map.getStart(), map.getEnd(),
    `${M} ${ids}.length === 0 ? [] : [api.agents.list({ session_id: ${ids}.join(","), limit: 100 * ${ids}.length })]`);
}

export default definePatch({
  id: ID,
  description: "The Dashboard fetches the agents of all active sessions in one GET /api/agents?session_id=a,b,… (the route takes a list)",
  why: "Each Dashboard reload fetched the agents of every active session one request at a time: 22 agents make 22 more requests per reload on the loop that answers hooks (issue #13).",
  removeWhen: "Upstream's Dashboard fetches the subagents of active sessions in one request.",
  targets: [ROUTE, DASHBOARD],
  apply(file) {
    if (file.path === ROUTE) applyRoute(file);
    else applyDashboard(file);
  },
  verify(file) {
    if (file.path === ROUTE) return file.text.includes(LIST_CLAUSE) ? [] : [`GET /api/agents does not take a list of session ids (no "${LIST_CLAUSE}" clause)`];
    const problems = perItemRequests(file).map((c) => `line ${c.getStartLineNumber()}: one request per element (${c.getText().split("\n")[0].trim()})`);
    if (!/api\.agents\.list\(\{ session_id: \w+\.join\(","\)/.test(file.text)) problems.push("no single api.agents.list({ session_id: ids.join(\",\") }) request");
    return problems;
  },
  verifyTree(tree: TreeView) {
    const out: string[] = [];
    for (const f of tree.clientFiles) {
      if (f !== DASHBOARD) continue; // the Dashboard reloads on every frame; other pages' per-item loads are user actions
      for (const c of perItemRequests(tree.file(f))) out.push(`${f}:${c.getStartLineNumber()} one request per element: ${c.getText().split("\n")[0].trim()}`);
    }
    return out;
  },
});
