// Indexes behind the list queries the dashboard's pages call, created at startup (IF NOT EXISTS: on
// existing databases too, a no-op once there) and timed in the server's log:
//   - events(session_id, created_at): GET /api/sessions orders by each session's MAX(created_at) of its
//     events, a correlated subquery per session; with this index it is one seek instead of a walk over
//     every event of the session.
//   - events(agent_id, created_at): the same for GET /api/agents (MAX(created_at) per agent).
//   - events(created_at DESC, id DESC): GET /api/events?limit=15 orders by (created_at, id); with only
//     (created_at) SQLite sorts the ties in a temp b-tree.
import { Node, SyntaxKind } from "ts-morph";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { PatchTargetError } from "./lib/errors.ts";
import { findOne, variableAnchor } from "./lib/find.ts";

const ID = "index-list-queries";
const DB = "server/db.js";

/** [name, table, columns as SQLite normalizes them for comparison] */
export const LIST_INDEXES: [string, string, string][] = [
  ["idx_events_session_created", "events", "session_id, created_at"],
  ["idx_events_agent_created", "events", "agent_id, created_at"],
  ["idx_events_created_id", "events", "created_at DESC, id DESC"],
];

/** The text of every string and template literal of the file (SQL lives in them). */
function sqlLiterals(sf: PatchFile["ast"]): { text: string }[] {
  const kinds = [SyntaxKind.StringLiteral, SyntaxKind.NoSubstitutionTemplateLiteral, SyntaxKind.TemplateExpression];
  return kinds.flatMap((k) => sf.getDescendantsOfKind(k)).map((n) => ({ text: n.getText() }));
}

const norm = (s: string) => s.replace(/\s+/g, " ").trim().toLowerCase();

/** Indexes upstream already declares on the same columns (any name). */
function declaredElsewhere(file: PatchFile | VerifyFile): Set<string> {
  const have = new Set<string>();
  for (const lit of sqlLiterals(file.ast)) {
    for (const m of lit.text.matchAll(/CREATE\s+INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+(\w+)\s*\(([^)]*)\)/gi)) {
      for (const [name, table, cols] of LIST_INDEXES) if (m[1] !== name && m[2] === table && norm(m[3]) === norm(cols)) have.add(name);
    }
  }
  return have;
}

function exportsStatement(file: PatchFile | VerifyFile) {
  return file.ast.getStatements().filter((s) => Node.isExpressionStatement(s) && s.getExpression().getKind() === SyntaxKind.BinaryExpression && /^module\.exports\s*=/.test(s.getText()));
}

export default definePatch({
  id: ID,
  description: "Creates the indexes behind the pages' list queries at startup (sessions and agents by last activity, latest events), idempotent, timed in the log.",
  why:
    "On a history of ~1,000 sessions and 150k events, GET /api/sessions?limit=10 took 70 ms and GET /api/agents?limit=100 486 ms with no " +
    "load: each row's last activity is a MAX over its events through an index on session_id (or agent_id, event_type) alone, so every event " +
    "of every session is read. The open Sessions page asks for it on each session_updated frame, on the event loop that answers the hooks.",
  removeWhen: "Upstream indexes events by (session_id, created_at), (agent_id, created_at) and (created_at, id).",
  targets: [DB],
  apply(file) {
    findOne(ID, file, variableAnchor("db"));
    const exp = exportsStatement(file);
    if (exp.length !== 1) throw new PatchTargetError(ID, file.path, "module.exports = { db, … } at the top level", exp.length, "db.js's exports changed; cannot place the index block.");
    const have = declaredElsewhere(file);
    for (const name of have) file.satisfied(`${name}: upstream already indexes ${LIST_INDEXES.find((i) => i[0] === name)![2]}`);
    const wanted = LIST_INDEXES.filter(([name]) => !have.has(name));
    if (wanted.length === 0) return;
    const m = marker(ID);
    const ddl = wanted.map(([name, table, cols]) => `  CREATE INDEX IF NOT EXISTS ${name} ON ${table}(${cols});`).join("\n");
    file.edit.appendLeft(
      exp[0].getStart(true),
      `${m}\n// Indexes behind the pages' list queries (last activity per session/agent, latest events). IF NOT EXISTS:\n` +
        `// built once on an existing database (timed below), a no-op afterwards.\n{\n  const startedAt = Date.now();\n  db.exec(\`\n${ddl}\n  \`);\n` +
        `  const ms = Date.now() - startedAt;\n  console.log(\`[index-list-queries] list-query indexes ready in \${ms} ms\`);\n}\n\n`,
    );
  },
  verify(file) {
    const have = declaredElsewhere(file);
    const ours = new Set<string>();
    for (const lit of sqlLiterals(file.ast)) for (const m of lit.text.matchAll(/CREATE\s+INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)/gi)) ours.add(m[1]);
    return LIST_INDEXES.filter(([name]) => !have.has(name) && !ours.has(name)).map(([name, table, cols]) => `no index ${name} on ${table}(${cols}): the pages' list queries walk every event`);
  },
});
