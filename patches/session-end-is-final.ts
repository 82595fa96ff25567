// An event sent before its session's SessionEnd can no longer bring the session back: the hook
// client stamps each event with its send time, the write queue applies a batch's events per session
// in send order, and the server remembers each SessionEnd's send time.
import { Node, SyntaxKind, type FunctionDeclaration, type IfStatement, type ObjectLiteralExpression, type SwitchStatement, type VariableDeclaration } from "ts-morph";
import { indentOf, topLevelFunction as topLevelFunctionOf } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { type Finding, finding, isFinding, PatchTargetError } from "./lib/errors.ts";
import { at, findAll, findOne, frame, stringValue, variableAnchor, type Anchor } from "./lib/find.ts";

const ID = "session-end-is-final";
const HOOKS = "server/routes/hooks.js";
const HANDLER = "scripts/hook-handler.js";
const M = marker(ID);

/** Names the patch introduces. */
export const SESSION_END_NAMES = {
  stamp: "stampSentAt",
  field: "sent_at_ms",
  sentAt: "hookSentAt",
  gate: "sentBeforeSessionEnd",
  flag: "sentBeforeEnd",
  order: "orderBySentAt",
  table: "session_end_marks",
} as const;
const N = SESSION_END_NAMES;

type AnyFile = PatchFile | VerifyFile;

function fail(file: AnyFile, expected: string, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, 0, detail);
}

const topLevelFunction = (file: AnyFile, name: string) => topLevelFunctionOf(file.ast, name);

// ── scripts/hook-handler.js ──────────────────────────────────────────────────

const STAMP_HELPER = `

${M}
// Stamp each event with the time this hook process sends it. Hook requests are fire-and-forget,
// so under load they can reach the dashboard out of order; the send time lets it apply a
// session's events in the order they happened, and keeps an event sent before the session's
// SessionEnd from reopening the session.
function ${N.stamp}(data) {
  if (!data || typeof data !== "object" || Array.isArray(data)) return data;
  return { ...data, ${N.field}: Date.now() };
}`;

/** The `data: …` property of the `{ hook_type: …, data: … }` payload the handler posts. */
const payloadData: Anchor<import("ts-morph").PropertyAssignment> = {
  shape: "{ hook_type: hookType, data: parsedData } (the payload posted to /api/hooks/event)",
  kind: SyntaxKind.PropertyAssignment,
  match: (n): n is import("ts-morph").PropertyAssignment => {
    if (!Node.isPropertyAssignment(n) || n.getName() !== "data") return false;
    const obj = n.getParent();
    return Node.isObjectLiteralExpression(obj) && obj.getProperties().some((p) => Node.isPropertyAssignment(p) && p.getName() === "hook_type");
  },
};

function applyHandler(file: PatchFile): void {
  if (!file.ast.getDescendantsOfKind(SyntaxKind.StringLiteral).some((s) => s.getLiteralValue() === "/api/hooks/event")) {
    fail(file, 'a hook client posting to "/api/hooks/event"', "The handler no longer names the endpoint; upstream changed how hooks are sent.");
  }
  if (topLevelFunction(file, N.stamp)) throw new PatchTargetError(ID, file.path, `no existing function ${N.stamp}`, 1, "Upstream added its own? Rename ours.");
  const hookTypeDecl = findOne(ID, file, variableAnchor("hookType"));
  const hookTypeStmt = hookTypeDecl.getVariableStatementOrThrow();
  if (hookTypeStmt.getParent() !== file.ast) fail(file, "module-level const hookType = process.argv[2] …", finding`Found: ${frame(hookTypeStmt)}.`);
  const data = findOne(ID, file, payloadData);
  const init = data.getInitializerOrThrow();
  file.edit.appendLeft(hookTypeStmt.getEnd(), STAMP_HELPER);
  file.edit.appendLeft(init.getStart(), `${N.stamp}(`);
  file.edit.appendLeft(init.getEnd(), `) ${M}`);
}

function verifyHandler(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  const fn = topLevelFunction(file, N.stamp);
  if (!fn) problems.push(`no function ${N.stamp}(data): events are sent without their send time`);
  else if (!fn.getDescendantsOfKind(SyntaxKind.PropertyAssignment).some((p) => p.getName() === N.field && p.getInitializer()?.getText() === "Date.now()")) {
    problems.push(`${N.stamp} does not set ${N.field}: Date.now()`);
  }
  const props = findAll(file, payloadData);
  if (props.length !== 1) return [...problems, `expected 1 { hook_type, data } payload, found ${props.length}`];
  const init = props[0].getInitializer();
  // stampSentAt(…) itself, or inside a later patch's wrapper (spool-hook-events: spoolHookEvent(hookType, stampSentAt(…)))
  const calls = init ? [init, ...init.getDescendantsOfKind(SyntaxKind.CallExpression)] : [];
  if (!calls.some((c) => Node.isCallExpression(c) && c.getExpression().getText() === N.stamp)) problems.push(finding`the posted data is not stamped (${frame(props[0])})`);
  return problems;
}

// ── server/routes/hooks.js ───────────────────────────────────────────────────

const SERVER_HELPERS = `${M}
// Hook requests are fire-and-forget, so an event can reach the server after its session's
// SessionEnd although it was SENT before it (e.g. a PreToolUse or Stop stuck behind a slow request).
// Upstream then reactivated the finished session, which stayed "active" forever. The hook client
// stamps every event with its send time (data.${N.field}); the server remembers the send time of
// each session's latest SessionEnd, and an event sent before it is recorded for history but
// neither reactivates the session nor changes any state. Unstamped events (older hook clients)
// keep upstream's behaviour; a new SessionStart / UserPromptSubmit sent after the SessionEnd
// (a genuine resume) still reactivates.
try {
  db.exec(
    "CREATE TABLE IF NOT EXISTS ${N.table} (session_id TEXT PRIMARY KEY, sent_at_ms REAL NOT NULL, recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
  );
} catch (err) {
  console.warn("[HOOKS] could not create ${N.table}:", err?.message || err);
}
let sessionEndStmts = null;
function sessionEndStatements() {
  if (!sessionEndStmts) {
    sessionEndStmts = {
      get: db.prepare("SELECT sent_at_ms FROM ${N.table} WHERE session_id = ?"),
      put: db.prepare(
        "INSERT INTO ${N.table} (session_id, sent_at_ms) VALUES (?, ?) ON CONFLICT(session_id) DO UPDATE SET sent_at_ms = MAX(sent_at_ms, excluded.sent_at_ms), recorded_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
      ),
    };
  }
  return sessionEndStmts;
}

// The hook client's send time (ms since epoch), or null for an unstamped event.
function ${N.sentAt}(data) {
  const v = data ? data.${N.field} : undefined;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

// True when this event was sent before the session's latest recorded SessionEnd. A stamped
// SessionEnd records its send time (the latest one wins). Stamps have millisecond resolution, so
// a tie counts as "before" unless the event is one that can resume a session (SessionEnd is the
// last hook a session fires; only a new SessionStart or UserPromptSubmit comes after it).
// Runs inside the event's transaction.
function ${N.gate}(sessionId, hookType, data) {
  const sentAt = ${N.sentAt}(data);
  if (sentAt === null) return false;
  const row = sessionEndStatements().get.get(sessionId);
  const endedAt = row ? Number(row.sent_at_ms) : null;
  const resumes = hookType === "SessionStart" || hookType === "UserPromptSubmit";
  if (endedAt !== null && (sentAt < endedAt || (sentAt === endedAt && !resumes))) return true;
  if (hookType === "SessionEnd") sessionEndStatements().put.run(sessionId, sentAt);
  return false;
}

// Write-queue orderBatch: within one batch, each session's stamped events are applied in send
// order (stable for equal stamps); unstamped events and other sessions' events keep their places.
function ${N.order}(items) {
  const slots = new Map();
  items.forEach((item, index) => {
    const data = item && item.data;
    const sessionId = data && data.session_id;
    if (!sessionId || ${N.sentAt}(data) === null) return;
    if (!slots.has(sessionId)) slots.set(sessionId, []);
    slots.get(sessionId).push(index);
  });
  const out = items.slice();
  for (const indexes of slots.values()) {
    if (indexes.length < 2) continue;
    const sorted = indexes
      .map((index) => items[index])
      .map((item, k) => ({ item, k }))
      .sort((a, b) => ${N.sentAt}(a.item.data) - ${N.sentAt}(b.item.data) || a.k - b.k);
    indexes.forEach((index, k) => {
      out[index] = sorted[k].item;
    });
  }
  return out;
}

`;

interface CoreParts {
  core: Node;
  coreStatement: Node;
  needs: VariableDeclaration;
  sw: SwitchStatement;
  selfHeal: IfStatement | null;
}

/** The event core (processEvent's body, or processEventCore after transcript-outside-lock). */
function coreParts(file: AnyFile): CoreParts | Finding {
  const needsAll = findAll(file, variableAnchor("needsReactivation"));
  if (needsAll.length !== 1) return `expected 1 const needsReactivation = … (the reactivation decision), found ${needsAll.length}`;
  const needs = needsAll[0];
  const core = needs.getFirstAncestor((a) => Node.isFunctionDeclaration(a) || Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  if (!core) return finding`needsReactivation is not inside a function (${frame(needs)})`;
  const params = (core as FunctionDeclaration).getParameters().map((p) => p.getName());
  if (params[0] !== "hookType" || params[1] !== "data") return finding`the event function takes (${params.join(", ")}), expected (hookType, data, …) (${frame(core)})`;
  const coreStatement = core.getFirstAncestor((a) => a.getParent() === file.ast) ?? core;
  const switches = core
    .getDescendantsOfKind(SyntaxKind.SwitchStatement)
    .filter((s) => s.getCaseBlock().getClauses().some((c) => Node.isCaseClause(c) && stringValue(c.getExpression()) === "SessionEnd"));
  if (switches.length !== 1) return `expected 1 switch with case "SessionEnd" in the event function, found ${switches.length}`;
  const sw = switches[0];
  const heals = core.getDescendantsOfKind(SyntaxKind.IfStatement).filter((i) => {
    const cond = i.getExpression().getText();
    return /\.status === "error"/.test(cond) && /isErrorAtTail\(/.test(cond) && /reactivateSession\.run/.test(i.getThenStatement().getText());
  });
  if (heals.length > 1) return `expected at most 1 error self-heal (status === "error" && !isErrorAtTail → reactivateSession), found ${heals.length}`;
  return { core, coreStatement, needs, sw, selfHeal: heals[0] ?? null };
}

function writeQueueOptions(file: AnyFile): ObjectLiteralExpression | null | Finding {
  const calls = file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => c.getExpression().getText() === "createWriteQueue");
  if (calls.length === 0) return null;
  if (calls.length > 1) return `expected at most 1 createWriteQueue({ … }), found ${calls.length}`;
  const opts = calls[0].getArguments()[0];
  if (!opts || !Node.isObjectLiteralExpression(opts)) return finding`createWriteQueue(…) does not get an object literal (${frame(calls[0])})`;
  return opts;
}

function applyHooks(file: PatchFile): void {
  for (const name of [N.sentAt, N.gate, N.order, "sessionEndStatements"]) {
    if (topLevelFunction(file, name)) throw new PatchTargetError(ID, file.path, `no existing function ${name}`, 1, "Upstream added its own? Rename ours.");
  }
  const parts = coreParts(file);
  if (isFinding(parts)) fail(file, "the hook event function with needsReactivation and switch (hookType)", finding`${parts}.`);
  const { core, coreStatement, needs, sw, selfHeal } = parts;

  const locals = new Set(core.getDescendantsOfKind(SyntaxKind.VariableDeclaration).map((d) => d.getName()));
  for (const name of ["sessionId", "summary", "toolName"]) {
    if (!locals.has(name)) fail(file, `a local ${name} in the hook event function`, finding`${frame(core)} no longer declares it.`);
  }
  if (locals.has(N.flag)) throw new PatchTargetError(ID, file.path, `no local ${N.flag}`, 1, "The event function already declares it; rename ours.");
  if (sw.getExpression().getText() !== "hookType") fail(file, 'switch (hookType) { … case "SessionEnd": … }', finding`Found: ${frame(sw)}.`);
  if (!sw.getCaseBlock().getClauses().some((c) => Node.isDefaultClause(c))) fail(file, "a default: clause in switch (hookType)", "Without it a late event would get no summary.");

  // above the event function and any comment that introduces it
  const lead = coreStatement.getLeadingCommentRanges();
  file.edit.appendLeft(lead.length > 0 ? lead[0].getPos() : coreStatement.getStart(), SERVER_HELPERS);

  // the decision, once per event, before anything changes state
  const needsStmt = needs.getVariableStatementOrThrow();
  const ind = indentOf(file.text, needsStmt);
  file.edit.appendLeft(needsStmt.getStart(), `const ${N.flag} = ${N.gate}(sessionId, hookType, data); ${M}\n${ind}`);
  const init = needs.getInitializerOrThrow();
  file.edit.appendLeft(init.getStart(), `!${N.flag} && ${M} (`);
  file.edit.appendLeft(init.getEnd(), ")");

  // a late event changes no state: it takes the default branch, and says what it is
  const disc = sw.getExpression();
  file.edit.overwrite(disc.getStart(), disc.getEnd(), `${N.flag} ? null : hookType`);
  const swInd = indentOf(file.text, sw);
  file.edit.appendLeft(
    sw.getEnd(),
    `\n${swInd}if (${N.flag}) { ${M}\n${swInd}  summary = \`Late \${hookType}\${toolName ? \` (\${toolName})\` : ""}: sent before the session ended; recorded, state unchanged\`;\n${swInd}}`,
  );

  // nor does the transcript-driven error self-heal reopen the ended session for it
  if (selfHeal) {
    const cond = selfHeal.getExpression();
    file.edit.appendLeft(cond.getStart(), `!${N.flag} && ${M} (`);
    file.edit.appendLeft(cond.getEnd(), ")");
  }

  // the write queue applies a batch's events per session in send order
  const opts = writeQueueOptions(file);
  if (isFinding(opts)) fail(file, "createWriteQueue({ … }) (from write-queue)", finding`${opts}.`);
  if (opts) {
    if (opts.getProperty("orderBatch")) throw new PatchTargetError(ID, file.path, "createWriteQueue without orderBatch", 1, "Another patch already orders batches; combine them.");
    const run = opts.getProperty("run");
    if (!run) fail(file, "createWriteQueue({ run, … })", finding`Found: ${frame(opts)}.`);
    const pInd = indentOf(file.text, run);
    // after `run`; run's own trailing comma (if any) then follows ours
    file.edit.appendLeft(run.getEnd(), `,\n${pInd}orderBatch: ${N.order} ${M}`);
  }
}

function verifyHooks(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  for (const name of [N.sentAt, N.gate, N.order]) if (!topLevelFunction(file, name)) problems.push(`no module-level function ${name}`);
  const parts = coreParts(file);
  if (isFinding(parts)) return [...problems, parts];
  const { core, needs, sw, selfHeal } = parts;
  const flag = core.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === N.flag);
  if (!flag || !/^sentBeforeSessionEnd\(/.test(flag.getInitializer()?.getText() ?? "")) problems.push(`no const ${N.flag} = ${N.gate}(…) in the event function`);
  else if (flag.getStart() > needs.getStart()) problems.push(`${N.flag} is computed after needsReactivation`);
  const mentionsFlag = (n: Node | undefined) => !!n && n.getDescendantsOfKind(SyntaxKind.Identifier).some((i) => i.getText() === N.flag);
  if (!mentionsFlag(needs.getInitializer())) problems.push("needsReactivation ignores whether the event was sent before the SessionEnd");
  if (!mentionsFlag(sw.getExpression())) problems.push("switch (hookType) still applies a late event's state changes");
  if (selfHeal && !mentionsFlag(selfHeal.getExpression())) problems.push(finding`the error self-heal can still reopen an ended session (${at(selfHeal)})`);
  const opts = writeQueueOptions(file);
  if (isFinding(opts)) problems.push(opts);
  else if (opts && !opts.getProperty("orderBatch")) problems.push("createWriteQueue gets no orderBatch: a batch's events are not applied in send order");
  return problems;
}

export default definePatch({
  id: ID,
  needs: ["write-queue"],
  description: "Hook events carry their send time; an event sent before its session's SessionEnd never reopens the session, and batches apply in send order.",
  why:
    "The v2 hook client is fire-and-forget, so under load one agent's hook requests reach the server out of order; a PreToolUse, " +
    "PostToolUse or Stop processed after its session's SessionEnd reactivated the finished session, which then showed as active forever.",
  removeWhen: "Upstream orders hook events by a client-side send time or sequence, or stops reactivating a session for events sent before its SessionEnd.",
  targets: [HOOKS, HANDLER],
  apply: (file) => (file.path === HANDLER ? applyHandler(file) : applyHooks(file)),
  verify: (file) => (file.path === HANDLER ? verifyHandler(file) : verifyHooks(file)),
  report: (file) => {
    if (file.path === HANDLER) return [`${file.path}: posted events carry data.${N.field} (send time)`];
    const opts = writeQueueOptions(file);
    return [`${file.path}: late events gated by ${N.gate}; write queue ${opts && typeof opts !== "string" ? "orders batches by send time" : "absent (no batches to order)"}`];
  },
});
