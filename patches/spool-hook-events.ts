// A write-ahead spool for hook events: the hook client appends each event (with a unique event_id)
// to a per-user spool file before it sends; the server stores event ids in the event's SAVEPOINT
// (a second copy is acknowledged and counted, not stored) and replays the spool into its database
// through the write queue. The runtime is our module server/patch-runtime/hook-spool.js (source:
// patches/runtime/hook-spool.js). See docs/durability.md.
import { readFileSync } from "node:fs";
import { Node, SyntaxKind, type ObjectLiteralExpression, type PropertyAssignment } from "ts-morph";
import { topLevelFunction, topLevelNames } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { type Finding, finding, isFinding, PatchTargetError } from "./lib/errors.ts";
import { callAnchor, findAll, findOne, frame, stringValue, type Anchor } from "./lib/find.ts";

const ID = "spool-hook-events";
const HOOKS = "server/routes/hooks.js";
const HANDLER = "scripts/hook-handler.js";
const RUNTIME_FILE = "server/patch-runtime/hook-spool.js";
const runtimeSource = readFileSync(new URL("./runtime/hook-spool.js", import.meta.url), "utf8");
const M = marker(ID);
const SPOOL = "spoolHookEvent";
const IDS = "spoolEventIds";
const REPLAY = "spoolReplay";

type AnyFile = PatchFile | VerifyFile;

function fail(file: AnyFile, expected: string, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, 0, detail);
}

// ── scripts/hook-handler.js ──────────────────────────────────────────────────

const HANDLER_HELPER = `

${M}
// Write-ahead spool: the event gets a unique event_id and is appended to the per-user spool (one
// O_APPEND write) BEFORE it is sent, so a dashboard that is down, restarting or answering 503 still
// gets it (the server replays the spool; the id keeps it stored once). Never throws, never waits.
function ${SPOOL}(hookType, data) {
  try {
    return require("../server/patch-runtime/hook-spool").${SPOOL}(hookType, data);
  } catch {
    return data;
  }
}`;

/** The `data: …` property of the `{ hook_type: …, data: … }` payload the handler posts. */
const payloadData: Anchor<PropertyAssignment> = {
  shape: "{ hook_type: hookType, data: stampSentAt(parsedData) } (the payload posted to /api/hooks/event)",
  kind: SyntaxKind.PropertyAssignment,
  match: (n): n is PropertyAssignment => {
    if (!Node.isPropertyAssignment(n) || n.getName() !== "data") return false;
    const obj = n.getParent();
    return Node.isObjectLiteralExpression(obj) && obj.getProperties().some((p) => Node.isPropertyAssignment(p) && p.getName() === "hook_type");
  },
};

function isSpoolCall(n: Node | undefined): boolean {
  return !!n && Node.isCallExpression(n) && n.getExpression().getText() === SPOOL && n.getArguments().length === 2;
}

function applyHandler(file: PatchFile): void {
  if (topLevelFunction(file.ast, SPOOL)) throw new PatchTargetError(ID, file.path, `no existing function ${SPOOL}`, 1, "Upstream added its own? Rename ours.");
  const stamp = topLevelFunction(file.ast, "stampSentAt");
  if (!stamp) fail(file, "function stampSentAt(data) (from session-end-is-final)", "Apply session-end-is-final first: the spool keeps the event's send time.");
  const data = findOne(ID, file, payloadData);
  const init = data.getInitializerOrThrow();
  if (!Node.isCallExpression(init) || init.getExpression().getText() !== "stampSentAt") fail(file, "data: stampSentAt(…) in the posted payload", finding`Found: ${frame(data)}.`);
  const hookType = data.getParentOrThrow().asKindOrThrow(SyntaxKind.ObjectLiteralExpression).getProperty("hook_type")!.asKindOrThrow(SyntaxKind.PropertyAssignment).getInitializerOrThrow().getText();
  file.edit.appendLeft(stamp.getEnd(), HANDLER_HELPER);
  file.edit.appendLeft(init.getStart(), `${SPOOL}(${hookType}, `);
  file.edit.appendLeft(init.getEnd(), `) ${M}`);
}

function verifyHandler(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  const fn = topLevelFunction(file.ast, SPOOL);
  if (!fn || !fn.getText().includes('require("../server/patch-runtime/hook-spool")')) problems.push(`no function ${SPOOL} requiring ../server/patch-runtime/hook-spool: events are not spooled`);
  const props = findAll(file, payloadData);
  if (props.length !== 1) return [...problems, `expected 1 { hook_type, data } payload, found ${props.length}`];
  if (!isSpoolCall(props[0].getInitializer())) problems.push(finding`the posted data is not spooled first (${frame(props[0])})`);
  return problems;
}

// ── server/routes/hooks.js ───────────────────────────────────────────────────

function writeQueueOptions(file: AnyFile): ObjectLiteralExpression | Finding {
  const calls = findAll(file, callAnchor("createWriteQueue"));
  if (calls.length !== 1) return `expected 1 createWriteQueue({ … }) (from write-queue), found ${calls.length}`;
  const opts = calls[0].getArguments()[0];
  if (!opts || !Node.isObjectLiteralExpression(opts)) return finding`createWriteQueue(…) does not get an object literal (${frame(calls[0])})`;
  return opts;
}

function optionInit(opts: ObjectLiteralExpression, name: string): Node | undefined {
  const p = opts.getProperty(name);
  return p && Node.isPropertyAssignment(p) ? p.getInitializer() : undefined;
}

const wrapped = (n: Node | undefined, how: string) => !!n && Node.isCallExpression(n) && n.getExpression().getText() === `${IDS}.${how}`;

function applyHooks(file: PatchFile): void {
  const names = topLevelNames(file.ast);
  for (const name of [IDS, REPLAY, "hookSpool"]) {
    if (names.has(name)) throw new PatchTargetError(ID, file.path, `no existing top-level ${name}`, 1, "Upstream added its own? Rename ours.");
  }
  if (!topLevelFunction(file.ast, "extractTranscriptForEvent")) fail(file, "function extractTranscriptForEvent(hookType, data) (from transcript-outside-lock)", "Replay reads transcripts as POST /event does.");
  const opts = writeQueueOptions(file);
  if (isFinding(opts)) fail(file, "const writeQueue = createWriteQueue({ db, run, afterCommit, … })", finding`${opts}.`);
  const db = optionInit(opts, "db");
  const run = optionInit(opts, "run");
  if (!db || !run) fail(file, "createWriteQueue({ db: …, run: … })", finding`Found: ${frame(opts)}.`);
  const stats = findOne(ID, file, callAnchor("router.get", "/write-queue/stats"));
  const queueStmt = opts.getFirstAncestor((a) => a.getParent() === file.ast);
  const statsStmt = stats.getFirstAncestor((a) => a.getParent() === file.ast);
  if (!queueStmt || !statsStmt) fail(file, "createWriteQueue and router.get(\"/write-queue/stats\") at the top level", finding`Found: ${frame(opts)}.`);

  file.edit.appendLeft(
    queueStmt.getStart(),
    `${M}
// Hook events carry a unique event_id (the hook client's spool): it is stored in the event's own
// SAVEPOINT, so an event arriving by POST and by spool replay (or twice by replay) is stored once;
// a duplicate is answered 200 and counted (spoolDuplicates in the write-queue stats).
const hookSpool = require("../patch-runtime/hook-spool");
const ${IDS} = hookSpool.createEventIds(${db.getText()}, (name) => writeQueue.count(name));

`,
  );
  file.edit.appendLeft(run.getStart(), `${IDS}.run(`);
  file.edit.appendLeft(run.getEnd(), `) ${M}`);
  const after = optionInit(opts, "afterCommit");
  if (after) {
    file.edit.appendLeft(after.getStart(), `${IDS}.afterCommit(`);
    file.edit.appendLeft(after.getEnd(), `) ${M}`);
  }
  file.edit.appendLeft(
    statsStmt.getEnd(),
    `

${M}
// Replay the hook spool into THIS database (its offsets live in it): at start and every few seconds,
// in bounded chunks through the write queue (same validation, ordering and SessionEnd rules as POST /event).
const ${REPLAY} = hookSpool.createSpoolReplay({
  db: ${db.getText()},
  writeQueue,
  dbPath: require("../db").DB_PATH || process.env.DASHBOARD_DB_PATH || "dashboard.db",
  transcriptFor: extractTranscriptForEvent,
  eventIds: ${IDS},
  count: (name) => writeQueue.count(name),
  check: require("../patch-runtime/validate-hook-input").checkHookBody,
});
router.${REPLAY} = ${REPLAY};
router.get("/spool/stats", (_req, res) => res.json({ ...${REPLAY}.stats(), ...writeQueue.stats() }));
${REPLAY}.start();`,
  );
}

function verifyHooks(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  const opts = writeQueueOptions(file);
  if (isFinding(opts)) return [opts];
  if (!wrapped(optionInit(opts, "run"), "run")) problems.push(finding`createWriteQueue's run is not ${IDS}.run(…): an event arriving twice is stored twice (${frame(opts)})`);
  const after = optionInit(opts, "afterCommit");
  if (after && !wrapped(after, "afterCommit")) problems.push(`createWriteQueue's afterCommit is not ${IDS}.afterCommit(…): a duplicate would run post-commit work`);
  const replay = findAll(file, callAnchor("hookSpool.createSpoolReplay"));
  const replayOpts = replay.length === 1 ? replay[0].getArguments()[0] : undefined;
  if (!replayOpts || !Node.isObjectLiteralExpression(replayOpts) || !optionInit(replayOpts, "check")?.getText().includes("checkHookBody")) {
    problems.push(`hookSpool.createSpoolReplay({ …, check: …checkHookBody }) not found: replayed events would skip POST /event's validation`);
  }
  const starts = file.ast.getStatements().filter((s) => s.getText() === `${REPLAY}.start();`);
  if (starts.length !== 1) problems.push(`expected 1 top-level ${REPLAY}.start(), found ${starts.length}: the spool is never replayed`);
  return problems;
}

export default definePatch({
  id: ID,
  needs: ["write-queue", "session-end-is-final", "validate-hook-input"],
  description: "The hook client spools each event (unique event_id) before sending; the server stores each id once and replays the spool through the write queue.",
  why:
    "The v2 hook client is fire-and-forget: an event sent while the dashboard is stopped, restarting, killed or answering 503 " +
    "(queue full) was lost for good, with nothing on either side to tell.",
  removeWhen: "Upstream's hook client persists events until the server has stored them (a spool, or acknowledged delivery with retries and idempotency keys).",
  targets: [HOOKS, HANDLER],
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply: (file) => (file.path === HANDLER ? applyHandler(file) : applyHooks(file)),
  verify: (file) => (file.path === HANDLER ? verifyHandler(file) : verifyHooks(file)),
  verifyTree(tree: TreeView) {
    // Every hook client in the tree (a module that calls a sender with "/api/hooks/event", e.g.
    // sendHook(ports, "/api/hooks/event", payload)) spools the { hook_type, data } payload it builds.
    // Upstream's own tests (which post fixed events with supertest) and its OpenAPI docs are not clients.
    const problems: string[] = [];
    for (const p of tree.jsFiles) {
      if (tree.isAdded(p) || /(^|\/)__tests__\/|\.test\.[cm]?js$/.test(p)) continue;
      if (!tree.text(p).includes("/api/hooks/event") || !tree.text(p).includes("hook_type")) continue;
      const file = tree.file(p);
      const sends = file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => c.getArguments().some((a) => stringValue(a) === "/api/hooks/event"));
      if (!sends) continue;
      for (const prop of findAll(file, payloadData)) {
        if (!isSpoolCall(prop.getInitializer())) problems.push(`${p}:${prop.getStartLineNumber()} posts hook data without spooling it first (${frame(prop)})`);
      }
    }
    return problems;
  },
  report: (file) => (file.path === HANDLER ? [`${file.path}: events spooled (event_id) before they are sent`] : [`${file.path}: event ids stored once; spool replayed through the write queue`]),
});
