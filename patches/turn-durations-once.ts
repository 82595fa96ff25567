// Record each transcript turn_duration exactly once, and derive turn_count / total_turn_duration_ms
// from the transcript instead of adding them up on every hook.
import { Node, SyntaxKind, type BinaryExpression, type ForOfStatement } from "ts-morph";
import { indentOf, topLevelFunction } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { at, callAnchor, findAll, findOne, stringValue, variableAnchor, type Anchor } from "./lib/find.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";

const ID = "turn-durations-once";
const HOOKS = "server/routes/hooks.js";
const M = marker(ID);

/** Names the patch introduces (verify looks for them). */
export const TURN_DURATION_NAMES = {
  timestamp: "turnDurationTimestamp",
  newest: "newestTurnDurationAt",
  insertAt: "insertTurnDurationAt",
  watermark: "newestRecordedTurnAt",
  index: "idx_events_session_type_created",
  /** Key added to the TurnDuration event data: the transcript timestamp the row was recorded at. */
  dataKey: "transcript_ts",
} as const;
const N = TURN_DURATION_NAMES;

/** Module-level helpers, placed right after `const transcriptCache = new TranscriptCache();`. */
const HELPERS = `

${M}
// Each system/turn_duration line of a transcript becomes exactly one TurnDuration
// event, stamped with the transcript's own timestamp (upstream stamped "now", so
// its created_at-based dedupe never matched and every hook re-inserted the whole
// list). Per hook, only lines newer than the session's newest recorded
// TurnDuration are looked at: one indexed lookup instead of one query per line.
try {
  db.exec(
    "CREATE INDEX IF NOT EXISTS ${N.index} ON events(session_id, event_type, created_at)"
  );
} catch (err) {
  console.warn("[HOOKS] could not create ${N.index}:", err?.message || err);
}
let turnDurationStmts = null;
function turnDurationStatements() {
  if (!turnDurationStmts) {
    turnDurationStmts = {
      newest: db.prepare(
        "SELECT created_at FROM events WHERE session_id = ? AND event_type = 'TurnDuration' ORDER BY created_at DESC LIMIT 1"
      ),
      insertAt: db.prepare(
        "INSERT INTO events (session_id, agent_id, event_type, tool_name, summary, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
      ),
    };
  }
  return turnDurationStmts;
}
// The transcript timestamp in the ISO form SQLite stores; null when absent or unparsable
// (such a line has no stable identity, so it is counted in turn_count but not recorded).
function ${N.timestamp}(td) {
  const raw = td ? td.timestamp : null;
  if (raw === null || raw === undefined || raw === "") return null;
  const ms = typeof raw === "number" ? raw : Date.parse(raw);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}
function ${N.newest}(sessionId) {
  const row = turnDurationStatements().newest.get(sessionId);
  return row ? row.created_at : null;
}
function ${N.insertAt}(sessionId, agentId, eventType, toolName, summary, data, createdAt) {
  return turnDurationStatements().insertAt.run(sessionId, agentId, eventType, toolName, summary, data, createdAt);
}`;

const turnDurationLoop: Anchor<ForOfStatement> = {
  shape: "for (const td of result.turnDurations) { … } (the TurnDuration event loop)",
  kind: SyntaxKind.ForOfStatement,
  match: (n): n is ForOfStatement => Node.isForOfStatement(n) && /\.turnDurations$/.test(n.getExpression().getText()),
};

function assignmentTo(target: string): Anchor<BinaryExpression> {
  return {
    shape: `${target} = … (session metadata update)`,
    kind: SyntaxKind.BinaryExpression,
    match: (n): n is BinaryExpression =>
      Node.isBinaryExpression(n) && n.getOperatorToken().getKind() === SyntaxKind.EqualsToken && n.getLeft().getText() === target,
  };
}

/** Leading whitespace of the line `node` starts on. */
/** True when `expr` mentions `target` (e.g. `(meta.turn_count || 0) + …` mentions meta.turn_count). */
function mentions(expr: Node, target: string): boolean {
  return expr.getDescendantsOfKind(SyntaxKind.PropertyAccessExpression).some((p) => p.getText() === target);
}

/** `meta.x = (meta.x || 0) + y` -> `meta.x = y`; already non-accumulating -> untouched. */
function deriveInsteadOfAccumulate(file: PatchFile, target: string, note: string): void {
  const assign = findOne(ID, file, assignmentTo(target));
  const rhs = assign.getRight();
  if (!mentions(rhs, target)) return;
  if (!Node.isBinaryExpression(rhs) || rhs.getOperatorToken().getKind() !== SyntaxKind.PlusToken || mentions(rhs.getRight(), target)) {
    throw new PatchTargetError(ID, file.path, `${target} = (${target} || 0) + <per-transcript value>`, 0, `Found: ${assign.getText()}. The accumulation changed shape upstream.`);
  }
  file.edit.overwrite(rhs.getStart(), rhs.getEnd(), `${rhs.getRight().getText()} ${M} /* ${note} */`);
}

function apply(file: PatchFile): void {
  const cacheDecl = findOne(ID, file, variableAnchor("transcriptCache"));
  const cacheStmt = cacheDecl.getVariableStatementOrThrow();
  if (cacheStmt.getParent() !== file.ast) {
    throw new PatchTargetError(ID, file.path, "module-level const transcriptCache = new TranscriptCache()", 0, "It is no longer at module level.");
  }

  const loop = findOne(ID, file, turnDurationLoop);
  const tsDecl = findOne(ID, file, { ...variableAnchor("tdTs"), within: loop });
  const tsInit = tsDecl.getInitializerOrThrow();
  const tsStmt = tsDecl.getVariableStatementOrThrow();
  const insert = findOne(ID, file, { ...callAnchor("stmts.insertEvent.run"), within: loop });
  const args = insert.getArguments();
  if (args.length !== 6 || stringValue(args[2]) !== "TurnDuration") {
    throw new PatchTargetError(ID, file.path, 'stmts.insertEvent.run(sessionId, mainAgentId, "TurnDuration", null, summary, data)', 0, `Found: ${insert.getText().split("\n").join(" ")}.`);
  }

  // 1. helpers at module level
  file.edit.appendLeft(cacheStmt.getEnd(), HELPERS);
  // 2. one lookup per hook: the newest TurnDuration already recorded for the session
  const loopIndent = indentOf(file.text, loop);
  file.edit.appendLeft(loop.getStart(), `const ${N.watermark} = ${N.newest}(sessionId); ${M}\n${loopIndent}`);
  // 3. the transcript's timestamp is the row's identity; skip what is already recorded
  file.edit.overwrite(tsInit.getStart(), tsInit.getEnd(), `${N.timestamp}(td)`);
  const stmtIndent = indentOf(file.text, tsStmt);
  file.edit.appendLeft(
    tsStmt.getEnd(),
    `\n${stmtIndent}if (!tdTs || (${N.watermark} && tdTs <= ${N.watermark})) continue; ${M}`,
  );
  // 4. insert at the transcript timestamp (so the upstream dedupe query matches too), and say so in
  //    the row's data: rows written this way are exact, which the optional cleanup relies on
  //    (docs/turn-durations-cleanup.md)
  const payload = args[5];
  const obj = Node.isCallExpression(payload) && payload.getExpression().getText() === "JSON.stringify" ? payload.getArguments()[0] : undefined;
  if (!obj || !Node.isObjectLiteralExpression(obj) || obj.getProperties().length === 0) {
    throw new PatchTargetError(ID, file.path, "JSON.stringify({ durationMs: … }) as the TurnDuration event data", 0, `Found: ${payload.getText()}.`);
  }
  const props = obj.getProperties();
  file.edit.appendLeft(props[props.length - 1].getEnd(), `, ${N.dataKey}: tdTs`);
  file.edit.overwrite(insert.getExpression().getStart(), insert.getExpression().getEnd(), N.insertAt);
  file.edit.appendLeft(payload.getEnd(), ", tdTs");

  // 5. turn_count / total derived from the transcript's full list (idempotent)
  deriveInsteadOfAccumulate(file, "meta.turn_count", "from the transcript, not added per hook");
  deriveInsteadOfAccumulate(file, "meta.total_turn_duration_ms", "from the transcript, not added per hook");
}

function verify(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  for (const name of [N.timestamp, N.newest, N.insertAt]) {
    if (!topLevelFunction(file.ast, name)) problems.push(`no module-level function ${name}()`);
  }
  const loops = findAll(file, turnDurationLoop);
  if (loops.length !== 1) {
    problems.push(`expected 1 loop over *.turnDurations, found ${loops.length}`);
  } else {
    const loop = loops[0];
    const calls = loop.getDescendantsOfKind(SyntaxKind.CallExpression).map((c) => c.getExpression().getText().replace(/\s+/g, ""));
    if (!calls.includes(N.insertAt)) problems.push(`the TurnDuration loop does not insert through ${N.insertAt}() at the transcript timestamp`);
    if (calls.includes("stmts.insertEvent.run")) problems.push("the TurnDuration loop still inserts with stmts.insertEvent.run (created_at = now)");
    const insertCall = loop.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => c.getExpression().getText() === N.insertAt);
    const dataArg = insertCall?.getArguments()[5];
    const marksData = dataArg?.getDescendantsOfKind(SyntaxKind.PropertyAssignment).some((p) => p.getName() === N.dataKey) ?? false;
    if (insertCall && !marksData) problems.push(`the TurnDuration event data does not carry ${N.dataKey}`);
    const usesWatermark = loop.getDescendantsOfKind(SyntaxKind.Identifier).some((i) => i.getText() === N.watermark);
    if (!usesWatermark) problems.push(`the TurnDuration loop does not skip entries at or before ${N.watermark}`);
    const block = loop.getParent();
    const declared =
      block !== undefined &&
      block.getDescendantsOfKind(SyntaxKind.VariableDeclaration).some((d) => d.getName() === N.watermark && /^newestTurnDurationAt\(/.test(d.getInitializer()?.getText() ?? ""));
    if (!declared) problems.push(`no const ${N.watermark} = ${N.newest}(…) before the TurnDuration loop`);
  }
  for (const target of ["meta.turn_count", "meta.total_turn_duration_ms"]) {
    for (const assign of findAll(file, assignmentTo(target))) {
      if (mentions(assign.getRight(), target)) problems.push(finding`${target} is still accumulated per hook (${at(assign)})`);
    }
  }
  return problems;
}

export default definePatch({
  id: ID,
  description: "Records each transcript turn_duration once (at its transcript timestamp) and derives turn_count/total from the transcript.",
  why:
    "hooks.js inserted every turn_duration of the transcript on every hook (its created_at dedupe compared the transcript timestamp " +
    "with a row stamped 'now', so it never matched): TurnDuration rows grew quadratically with session length, hook latency climbed, " +
    "and turn_count / total_turn_duration_ms were inflated by re-adding the whole list per hook.",
  removeWhen: "Upstream inserts TurnDuration events at the transcript timestamp (or keys them by identity) and stops accumulating turn_count per hook.",
  targets: [HOOKS],
  apply,
  verify,
  report: (file) => {
    const loop = findAll(file, turnDurationLoop)[0];
    return loop ? [`${file.path}: TurnDuration loop at line ${loop.getStartLineNumber()} skips entries at or before the newest recorded one`] : [];
  },
});
