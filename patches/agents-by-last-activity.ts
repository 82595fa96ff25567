// GET /api/agents (the Dashboard's agent cards, ?limit=100) ordered every agent by its last activity, a
// correlated MAX over its events computed for each agent, sorted them all and kept LIMIT. The patch keeps
// that value per agent in a side table maintained by triggers (server/patch-runtime/agent-last-activity.js,
// created and backfilled at startup), and the LIMITed agent lists walk the table's index newest first,
// joining each agent by id, and stop at their LIMIT. Same rows and same last_activity values as upstream;
// agents whose last activity ties may trade places (SQL leaves their order to the plan).
import { readFileSync } from "node:fs";
import { Node, SyntaxKind, type TemplateExpression } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { At, finding, PatchTargetError, type Finding } from "./lib/errors.ts";
import { findAll, findOne, variableAnchor } from "./lib/find.ts";
import { sqlLiteral, sqlText } from "./lib/sqlite.ts";

const ID = "agents-by-last-activity";
const M = marker(ID);
const DB = "server/db.js";
const ROUTE = "server/routes/agents.js";
/** Our runtime module in the generated tree (source: patches/runtime/agent-last-activity.js). */
export const RUNTIME_FILE = "server/patch-runtime/agent-last-activity.js";
const runtimeSource = readFileSync(new URL("./runtime/agent-last-activity.js", import.meta.url), "utf8");
const ENSURE = `require("./patch-runtime/agent-last-activity").ensureAgentLastActivity(db);`;

/** Upstream's definition of an agent's last activity: what the side table keeps, exactly. */
const UPSTREAM_ACTIVITY = /^COALESCE\(\s*\(\s*SELECT\s+MAX\(\s*e\.created_at\s*\)\s+FROM\s+events\s+e\s+WHERE\s+e\.agent_id\s*=\s*a\.id\s*\)\s*,\s*a\.ended_at\s*,\s*a\.started_at\s*\)$/i;
/** A correlated MAX over one agent's events: the computed last activity, however it is wrapped. */
const COMPUTED = /SELECT\s+MAX\(\s*\w+\.created_at\s*\)\s+FROM\s+events\s+\w+\s+WHERE\s+\w+\.agent_id\s*=\s*\w+\.id\b/i;
/** An agent list ordered by it with a LIMIT: [1] the `${…}` of the activity, [2] `FROM agents a`. */
const LISTING = /^`SELECT\s+a\.\*,\s*(\$\{\s*(\w+)\s*\})\s+AS\s+last_activity\s+(FROM\s+agents\s+a)\s+(?:WHERE\s+[\s\S]+?\s+)?ORDER\s+BY\s+last_activity\s+DESC\s+LIMIT\s+\?(?:\s+OFFSET\s+\?)?\s*`$/i;
/** The rewrite: the side table's key, and its index walked first (CROSS JOIN keeps that order). */
const KEY = "COALESCE(l.event_max, l.fallback)";
const FROM = "FROM agent_last_activity l CROSS JOIN agents a ON a.id = l.agent_id";
const WALKS = /FROM\s+agent_last_activity\s+l\s+CROSS\s+JOIN\s+agents\s+a\s+ON\s+a\.id\s*=\s*l\.agent_id/i;

type AnyFile = PatchFile | VerifyFile;

const listing = { shape: "`SELECT a.*, ${AGENT_LAST_ACTIVITY_SQL} AS last_activity FROM agents a [WHERE …] ORDER BY last_activity DESC LIMIT ? [OFFSET ?]`", kind: SyntaxKind.TemplateExpression,
  match: (n: Node): n is TemplateExpression => Node.isTemplateExpression(n) && LISTING.test(n.getText()) };

/** A SQL literal's text with each `${name}` replaced by the text of the const it names in the same file (else `?`). */
function expanded(file: AnyFile, lit: Node): string {
  if (!Node.isTemplateExpression(lit)) return sqlText(lit);
  const parts = [lit.getHead().getLiteralText()];
  for (const span of lit.getTemplateSpans()) {
    const bound = sqlLiteral(file, span.getExpression());
    parts.push(bound && bound !== lit ? expanded(file, bound) : "?", span.getLiteral().getLiteralText());
  }
  return parts.join("");
}

/** `sql` with everything inside parentheses blanked (same length): what is left is the statement's own clauses. */
function topLevel(sql: string): string {
  let depth = 0;
  return [...sql].map((c) => (c === "(" ? (depth++, " ") : c === ")" ? (depth--, " ") : depth > 0 ? " " : c)).join("");
}

/** A LIMITed listing of agents whose ORDER BY is the computed last activity (by alias or in place). */
function ordersByComputed(sql: string): boolean {
  if (!COMPUTED.test(sql)) return false;
  const flat = topLevel(sql);
  const from = flat.search(/\bFROM\s+agents\b/i);
  const order = flat.search(/\bORDER\s+BY\b/i);
  if (from < 0 || order < 0 || !/\bLIMIT\b/i.test(flat.slice(order))) return false;
  const select = sql.slice(0, from);
  const aliases = [...select.matchAll(/\)\s+AS\s+(\w+)/gi)].map((m) => m[1]);
  const orderBy = sql.slice(order, order + flat.slice(order).search(/\bLIMIT\b/i));
  return COMPUTED.test(orderBy) || aliases.some((a) => new RegExp(`\\b${a}\\b`, "i").test(orderBy));
}

/** `<line> …` for each LIMITed agent list in the file ordered by the computed last activity. */
function computedLists(file: AnyFile): { line: number; message: string }[] {
  const out: { line: number; message: string }[] = [];
  for (const lit of [SyntaxKind.TemplateExpression, SyntaxKind.NoSubstitutionTemplateLiteral, SyntaxKind.StringLiteral].flatMap((k) => file.ast.getDescendantsOfKind(k))) {
    if (ordersByComputed(expanded(file, lit)))
      out.push({ line: lit.getStartLineNumber(), message: "an agent list with LIMIT orders by the computed last activity (a MAX over each agent's events, every agent sorted)" });
  }
  return out;
}

const MAY_COMPUTE = /FROM\s+events\s+\w+\s+WHERE\s+\w+\.agent_id/i;

export default definePatch({
  id: ID,
  description: "Keeps each agent's last activity in a side table (triggers, backfilled at startup); GET /api/agents' LIMITed lists walk its index newest first.",
  why:
    "The Dashboard asks for GET /api/agents?limit=100 (and ?status=working,waiting) on its reloads; upstream computed a MAX over events for " +
    "every agent of the history and sorted them all to keep 100 (issue #13, ~1,000 sessions and 150k events in a year's history).",
  removeWhen: "Upstream stores or indexes an agent's last activity (or orders its agent lists by an indexed column).",
  needs: ["index-list-queries"],
  targets: [DB, ROUTE],
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply(file) {
    const lists = findAll(file, listing);
    if (lists.length === 0) findOne(ID, file, listing);
    for (const t of lists) {
      const m = LISTING.exec(t.getText())!;
      const bound = sqlLiteral(file, t.getTemplateSpans().find((s) => s.getExpression().getText() === m[2])!.getExpression());
      if (!bound || !UPSTREAM_ACTIVITY.test(sqlText(bound).trim())) {
        throw new PatchTargetError(ID, file.path, `const ${m[2]} = \`COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.ended_at, a.started_at)\``, 0,
          "Upstream's definition of an agent's last activity changed; the side table keeps the old one (runtime/agent-last-activity.js).", bound ? { line: bound.getStartLineNumber(), text: bound.getText().replace(/\s+/g, " ") } : undefined);
      }
      const at = t.getStart();
      file.edit.overwrite(at + m[0].indexOf(m[1]), at + m[0].indexOf(m[1]) + m[1].length, KEY);
      file.edit.overwrite(at + m[0].indexOf(m[3]), at + m[0].indexOf(m[3]) + m[3].length, FROM);
      file.edit.appendLeft(at, `${M} `);
    }
    if (file.path === DB) {
      // Before the statements are prepared: they read the side table.
      const stmts = findOne(ID, file, variableAnchor("stmts")).getVariableStatementOrThrow();
      file.edit.appendLeft(stmts.getStart(true),
        `${M}\n// Each agent's last activity in a side table kept by triggers (made and backfilled once, timed in the log):\n` +
          `// the agent lists below walk its index newest first and stop at their LIMIT.\n${ENSURE}\n\n`);
    }
  },
  verify(file) {
    // A release whose agent lists order by a stored column (v1.x: started_at) has nothing to rewrite.
    const problems: Finding[] = computedLists(file).map((p) => finding`${new At(p.line)} ${p.message}`);
    if (file.path === DB && WALKS.test(file.text) && !file.text.includes(ENSURE)) problems.push("the agent lists read agent_last_activity but nothing makes it at startup (ensureAgentLastActivity(db))");
    return problems;
  },
  verifyTree(tree: TreeView) {
    const out: string[] = [];
    for (const f of tree.jsFiles) {
      if (f.includes("__tests__") || tree.isAdded(f) || !MAY_COMPUTE.test(tree.text(f))) continue;
      for (const p of computedLists(tree.file(f))) out.push(`${f}:${p.line} ${p.message}`);
    }
    return out;
  },
  reportTree(tree: TreeView) {
    let n = 0;
    for (const f of tree.jsFiles) if (!tree.isAdded(f)) n += (tree.text(f).match(new RegExp(WALKS.source, "gi")) ?? []).length;
    return [`${n} agent lists walk agent_last_activity newest first; none with LIMIT orders by a MAX over each agent's events`];
  },
});
