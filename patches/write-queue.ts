// Group commit for POST /api/hooks/event: validate, read the transcript outside the lock, enqueue;
// a setImmediate drain writes the queued events in one BEGIN IMMEDIATE transaction with a SAVEPOINT
// per event and answers each request only after COMMIT. Broadcasts are held until COMMIT (websocket.js),
// post-commit work (alerts, subagent import, workflow ingest) runs only for persisted events, and
// SIGTERM/SIGINT write what is queued before the server closes (index.js). The queue itself is our
// own module, server/patch-runtime/write-queue.js (source: patches/runtime/write-queue.js).
import { readFileSync } from "node:fs";
import { type Block, type CallExpression, Node, type Statement, SyntaxKind } from "ts-morph";
import { type FnLike, indentOf, isFnLike, topLevelFunction, topLevelNames } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { type Finding, finding, type Found, isFinding, PatchTargetError } from "./lib/errors.ts";
import { at, callAnchor, findAll, findOne, frame, functionAnchor, variableAnchor } from "./lib/find.ts";
import { functionsByName, reachChain } from "./lib/reach.ts";

const ID = "write-queue";
const HOOKS = "server/routes/hooks.js";
const WS = "server/websocket.js";
const INDEX = "server/index.js";
const QUEUE_FILE = "server/patch-runtime/write-queue.js";
const STATS_PATH = "/write-queue/stats";
const REFUSED = "refused";
const queueSource = readFileSync(new URL("./runtime/write-queue.js", import.meta.url), "utf8");

function fail(file: PatchFile, expected: string, found: number, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, found, detail);
}




/** Names a statement declares (identifiers and destructured bindings). */
function declaredBy(st: Statement): string[] {
  if (!Node.isVariableStatement(st)) return [];
  return st.getDeclarations().flatMap((d) => {
    const n = d.getNameNode();
    return Node.isIdentifier(n) ? [n.getText()] : n.getDescendantsOfKind(SyntaxKind.BindingElement).map((b) => b.getName());
  });
}

/** Identifiers read by `node` (property names and object keys excluded). */
function readIdentifiers(node: Node): Node[] {
  return node.getDescendantsOfKind(SyntaxKind.Identifier).filter((id) => {
    const parent = id.getParent();
    if (parent && Node.isPropertyAccessExpression(parent) && parent.getNameNode() === id) return false;
    if (parent && Node.isPropertyAssignment(parent) && parent.getNameNode() === id) return false;
    return true;
  });
}

// ── server/routes/hooks.js ─────────────────────────────────────────────────

interface EventRoute {
  routeStatement: Statement;
  handler: FnLike;
  body: Block;
  req: string;
  res: string;
}

function eventRoute(file: PatchFile | VerifyFile): EventRoute | Finding {
  const calls = findAll(file, callAnchor("router.post", "/event"));
  if (calls.length !== 1) return `expected 1 router.post("/event", …) but found ${calls.length}`;
  const call = calls[0];
  const handler = call.getArguments()[call.getArguments().length - 1];
  if (!isFnLike(handler) || !Node.isBlock(handler.getBody())) return finding`router.post("/event", …) no longer ends with an inline (req, res) => { … } handler (${frame(call)})`;
  const params = handler.getParameters();
  if (params.length < 2) return finding`the /event handler takes ${params.length} parameter(s); expected (req, res) (${frame(handler)})`;
  const routeStatement = call.getFirstAncestor((a) => Node.isExpressionStatement(a) && a.getParent() === file.ast) as Statement | undefined;
  if (!routeStatement) return finding`router.post("/event", …) is not a top-level statement (${frame(call)})`;
  return { routeStatement, handler, body: handler.getBody() as Block, req: params[0].getName(), res: params[1].getName() };
}

function applyHooks(file: PatchFile): void {
  const sf = file.ast;
  for (const needed of ["processEventCore", "extractTranscriptForEvent"]) {
    if (!topLevelFunction(sf, needed)) {
      fail(file, `function ${needed}(…) (from transcript-outside-lock)`, 0, "write-queue runs after transcript-outside-lock; apply that patch first (is it registered before write-queue in patches/index.ts?).");
    }
  }
  const taken = topLevelNames(sf);
  for (const name of ["writeQueue", "createWriteQueue", "limitsFromEnv", "sendWriteQueueError", "afterEventCommit"]) {
    if (taken.has(name)) fail(file, `no existing top-level ${name}`, 1, `the module already declares ${name}; upstream added its own? Rename ours.`);
  }
  // The `db` binding the core's transaction uses (db.transaction(processEventCore)).
  const txOfCore = sf.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => {
    const callee = c.getExpression();
    const arg = c.getArguments()[0];
    return Node.isPropertyAccessExpression(callee) && callee.getName() === "transaction" && !!arg && arg.getText() === "processEventCore";
  });
  if (!txOfCore) fail(file, "db.transaction(processEventCore) (from transcript-outside-lock)", 0, "cannot tell which connection the events are written through.");
  const dbName = (txOfCore.getExpression() as import("ts-morph").PropertyAccessExpression).getExpression().getText();

  findOne(ID, file, callAnchor("router.post", "/event")); // exactly one, or the standard error with the nearest candidate
  const route = eventRoute(file);
  if (isFinding(route)) fail(file, 'router.post("/event", (req, res) => { … })', 0, finding`${route}.`);
  const { routeStatement, body, req, res } = route;
  const statements = body.getStatements();
  if (statements.some((st) => declaredBy(st).includes(REFUSED))) {
    fail(file, `no local ${REFUSED} in the /event handler`, 1, "the handler already declares it; rename ours.");
  }

  // `const result = processEvent(hook_type, data);`
  const writeIdx = statements.findIndex((st) => {
    if (!Node.isVariableStatement(st) || st.getDeclarations().length !== 1) return false;
    const init = st.getDeclarations()[0].getInitializer();
    return !!init && Node.isCallExpression(init) && init.getExpression().getText() === "processEvent";
  });
  if (writeIdx === -1) {
    const nearest = body.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => /processEvent/.test(c.getExpression().getText()));
    fail(file, "const result = processEvent(hook_type, data); in the /event handler", 0,
      finding`${nearest ? finding`Nearest: ${frame(nearest)}.` : "The handler no longer calls processEvent."} Upstream changed how POST /event writes the event.`);
  }
  const writeStmt = statements[writeIdx];
  const writeDecl = (writeStmt as import("ts-morph").VariableStatement).getDeclarations()[0];
  const writeCall = writeDecl.getInitializer() as CallExpression;
  const args = writeCall.getArguments();
  if (!Node.isIdentifier(writeDecl.getNameNode()) || args.length !== 2 || !args.every((a) => Node.isIdentifier(a))) {
    fail(file, "const result = processEvent(hook_type, data); with two plain arguments", 0, finding`${frame(writeStmt)}.`);
  }
  const resultName = writeDecl.getName();
  const [hookArg, dataArg] = args.map((a) => a.getText());

  // The success answer: the first top-level `res.json(...)` after the write.
  const respondIdx = statements.findIndex((st, i) => {
    if (i <= writeIdx || !Node.isExpressionStatement(st)) return false;
    const e = st.getExpression();
    return Node.isCallExpression(e) && e.getExpression().getText().replace(/\s+/g, "") === `${res}.json`;
  });
  if (respondIdx === -1) fail(file, `${res}.json({ ok: true, event: ${resultName} }) after processEvent`, 0, "the /event handler no longer answers with res.json after writing the event.");
  const respondStmt = statements[respondIdx];
  const post = statements.slice(respondIdx + 1);

  // Post-commit work moves into afterEventCommit(hook_type, data, result): it may use only those.
  const handlerLocals = new Set([req, res, ...statements.slice(0, respondIdx + 1).flatMap(declaredBy)]);
  const allowed = new Set([hookArg, dataArg, resultName]);
  for (const st of post) {
    for (const id of readIdentifiers(st)) {
      const name = id.getText();
      if (handlerLocals.has(name) && !allowed.has(name)) {
        fail(file, `post-commit work using only ${hookArg}, ${dataArg}, ${resultName}`, 0,
          finding`${at(id)}: the work after the answer uses ${name}, so it cannot move into afterEventCommit.`);
      }
    }
  }

  const m = marker(ID);
  const ind = indentOf(file.text, writeStmt);
  const afterCommitOption = post.length > 0
    ? ["  afterCommit: (item, result) => {", "    if (result) afterEventCommit(item.hookType, item.data, result);", "  },"]
    : [];
  const setup = [
    m,
    "// Group commit: POST /event reads the transcript outside the lock and enqueues; a setImmediate drain",
    "// writes the queued events in one BEGIN IMMEDIATE transaction, a SAVEPOINT per event, and every",
    "// request is answered only after COMMIT (200 = durable). See server/patch-runtime/write-queue.js.",
    'const { createWriteQueue, limitsFromEnv, sendWriteQueueError } = require("../patch-runtime/write-queue");',
    "const writeQueue = createWriteQueue({",
    `  db: ${dbName},`,
    "  run: (item) => processEventCore(item.hookType, item.data, item.transcriptData),",
    ...afterCommitOption,
    '  holdBroadcasts: require("../websocket").holdBroadcasts,',
    "  ...limitsFromEnv(process.env),",
    "  log: console,",
    "});",
    "router.writeQueue = writeQueue;",
    `router.get("${STATS_PATH}", (_req, res) => res.json(writeQueue.stats()));`,
    "",
    "",
  ].join("\n");
  file.edit.appendLeft(routeStatement.getStart(), setup);

  // Refuse before working: a full (or closing) queue answers 503 + Retry-After before the transcript is read.
  file.edit.appendLeft(
    writeStmt.getStart(),
    `${m} const ${REFUSED} = writeQueue.refusal(); // full or shutting down: answer now, before reading the transcript\n${ind}if (${REFUSED}) return sendWriteQueueError(${res}, ${REFUSED});\n${ind}`,
  );
  file.edit.overwrite(
    writeStmt.getStart(),
    writeStmt.getEnd(),
    `${m} writeQueue.enqueue({ hookType: ${hookArg}, data: ${dataArg}, transcriptData: extractTranscriptForEvent(${hookArg}, ${dataArg}) }).then((${resultName}) => {`,
  );
  file.edit.appendLeft(respondStmt.getEnd(), `\n${ind}${m} }).catch((err) => sendWriteQueueError(${res}, err));`);

  if (post.length > 0) {
    const from = post[0].getFullStart();
    const to = post[post.length - 1].getEnd();
    const moved = file.text.slice(from, to);
    file.edit.remove(from, to);
    file.edit.appendLeft(
      routeStatement.getEnd(),
      [
        "",
        "",
        m,
        "// Post-commit work, moved out of the /event handler: the write queue calls it (setImmediate, after",
        "// the answer) only for events whose transaction COMMITted, never for one that rolled back.",
        `function afterEventCommit(${hookArg}, ${dataArg}, ${resultName}) {${moved}`,
        "}",
      ].join("\n"),
    );
  }
}

/**
 * The handler asks writeQueue.refusal() and answers a refusal (503 + Retry-After) in statements of
 * its own, before the statement that reads the transcript (extractTranscriptForEvent, or a prefetch
 * around it) and enqueues: a full queue costs no transcript read.
 */
function refusalFirst(route: EventRoute, enqueue: CallExpression): Finding[] {
  const statements = route.body.getStatements();
  const indexOf = (n: Node) => statements.findIndex((st) => st.containsRange(n.getStart(), n.getEnd()));
  const asks = route.body.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => c.getExpression().getText().replace(/\s+/g, "") === "writeQueue.refusal");
  if (asks.length !== 1) return [`the /event handler asks writeQueue.refusal() ${asks.length} times, expected once: a full queue must be refused before the transcript is read`];
  const askIdx = indexOf(asks[0]);
  const answer = statements[askIdx + 1];
  if (!answer || !Node.isIfStatement(answer) || !/^return sendWriteQueueError\(/.test(answer.getThenStatement().getText().trim())) {
    return [finding`the refusal asked at ${at(asks[0])} is not answered right after it (if (${REFUSED}) return sendWriteQueueError(…))`];
  }
  const work = [enqueue, ...route.body.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => /^(extractTranscriptForEvent|transcriptPrefetch\.run)$/.test(c.getExpression().getText()))];
  const early = work.filter((c) => indexOf(c) <= askIdx + 1);
  return early.map((c) => finding`the transcript is read or the event enqueued before a full queue is refused: ${frame(c)}`);
}

function verifyHooks(file: VerifyFile): Finding[] {
  const sf = file.ast;
  const problems: Finding[] = [];
  const decl = sf.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === "writeQueue");
  const init = decl?.getInitializer();
  if (!decl || !init || !Node.isCallExpression(init) || init.getExpression().getText() !== "createWriteQueue") {
    return ["no `const writeQueue = createWriteQueue({…})`: POST /event still writes and answers one event at a time"];
  }
  const opts = init.getArguments()[0];
  const runProp = opts && Node.isObjectLiteralExpression(opts) ? opts.getProperty("run") : undefined;
  if (!runProp || !runProp.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => id.getText() === "processEventCore")) {
    problems.push("createWriteQueue's run option does not call processEventCore");
  }
  const holdProp = opts && Node.isObjectLiteralExpression(opts) ? opts.getProperty("holdBroadcasts") : undefined;
  if (!holdProp) problems.push("createWriteQueue gets no holdBroadcasts: broadcasts would go out before COMMIT");
  const exported = sf.getDescendantsOfKind(SyntaxKind.BinaryExpression).some((b) => b.getLeft().getText().replace(/\s+/g, "") === "router.writeQueue" && b.getRight().getText() === "writeQueue");
  if (!exported) problems.push("router.writeQueue = writeQueue is missing (other patches hook in through it)");
  if (findAll(file, callAnchor("router.get", STATS_PATH)).length !== 1) problems.push(`no GET ${STATS_PATH} route`);

  const route = eventRoute(file);
  if (isFinding(route)) return [...problems, route];
  const { handler, res } = route;
  const calls = handler.getDescendantsOfKind(SyntaxKind.CallExpression);
  const enqueue = calls.find((c) => c.getExpression().getText().replace(/\s+/g, "") === "writeQueue.enqueue");
  if (!enqueue) return [...problems, "the /event handler does not enqueue the event (writeQueue.enqueue)"];
  problems.push(...refusalFirst(route, enqueue));
  const direct = calls.filter((c) => ["processEvent", "processEventCore"].includes(c.getExpression().getText()));
  for (const c of direct) problems.push(finding`the /event handler still writes directly: ${frame(c)}`);
  if (!enqueue.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => c.getExpression().getText() === "extractTranscriptForEvent")) {
    problems.push("the enqueued item does not carry the transcript read by extractTranscriptForEvent (it would be read under the lock)");
  }
  // Every answer after the enqueue must sit in a .then/.catch continuation (i.e. after COMMIT).
  for (const c of calls) {
    if (c.getStart() <= enqueue.getStart()) continue;
    const root = c.getExpression().getText().split(/[.(]/)[0];
    if (root !== res && !(c.getExpression().getText() === "sendWriteQueueError")) continue;
    const continuation = c.getAncestors().find((a) => {
      if (a === handler || !isFnLike(a)) return false;
      const call = a.getParent();
      if (!call || !Node.isCallExpression(call) || !call.getArguments().includes(a as never)) return false;
      const callee = call.getExpression();
      return Node.isPropertyAccessExpression(callee) && ["then", "catch"].includes(callee.getName());
    });
    if (!continuation) problems.push(finding`answers outside the promise continuation (before COMMIT): ${frame(c)}`);
  }
  return problems;
}

// ── server/websocket.js ────────────────────────────────────────────────────

function applyWebsocket(file: PatchFile): void {
  const fn = findOne(ID, file, functionAnchor("broadcast"));
  const params = fn.getParameters();
  if (params.length !== 2 || params.some((p) => !Node.isIdentifier(p.getNameNode()))) {
    fail(file, "function broadcast(type, data) { … }", 0, finding`broadcast takes ${params.length} parameter(s) (${frame(fn)}); upstream changed its signature.`);
  }
  const body = fn.getBody();
  if (!body || !Node.isBlock(body)) fail(file, "function broadcast(type, data) { … }", 0, finding`broadcast has no body (${frame(fn)}).`);
  const exportsAssign = file.ast.getDescendantsOfKind(SyntaxKind.BinaryExpression).filter((b) => b.getLeft().getText().replace(/\s+/g, "") === "module.exports");
  const objects = exportsAssign.map((b) => b.getRight()).filter((r) => Node.isObjectLiteralExpression(r));
  if (exportsAssign.length !== 1 || objects.length !== 1) {
    fail(file, "module.exports = { initWebSocket, broadcast, … }", exportsAssign.length, "websocket.js no longer exports one object literal; cannot add holdBroadcasts.");
  }
  const taken = topLevelNames(file.ast);
  for (const name of ["holdBroadcasts", "broadcastHolds", "snapshotForHold"]) {
    if (taken.has(name)) fail(file, `no existing top-level ${name}`, 1, `websocket.js already declares ${name}; upstream added its own? Rename ours.`);
  }
  const [type, data] = params.map((p) => p.getName());
  const m = marker(ID);
  const hold = [
    m,
    "// Broadcast hold buffers. While a hold is open, broadcast() buffers its frames instead of sending",
    "// them: the write queue opens one per transaction and one per event savepoint, flushes them after",
    "// COMMIT and discards an event's frames when its savepoint rolls back. Synchronous code only, so a",
    "// module-level stack is enough.",
    "const broadcastHolds = [];",
    "",
    "function snapshotForHold(value) {",
    "  try {",
    "    return value === undefined ? value : structuredClone(value);",
    "  } catch {",
    "    return value;",
    "  }",
    "}",
    "",
    "function holdBroadcasts() {",
    "  const frames = [];",
    "  broadcastHolds.push(frames);",
    "  let open = true;",
    "  const close = () => {",
    "    if (!open) return false;",
    "    open = false;",
    "    const at = broadcastHolds.lastIndexOf(frames);",
    "    if (at !== -1) broadcastHolds.splice(at, 1);",
    "    return true;",
    "  };",
    "  return {",
    "    // Send everything buffered, in order (into the enclosing hold, if one is open).",
    "    flush() {",
    "      if (close()) for (const [type, data] of frames) broadcast(type, data);",
    "    },",
    "    // Drop everything buffered.",
    "    discard() {",
    "      close();",
    "    },",
    "    get size() {",
    "      return frames.length;",
    "    },",
    "  };",
    "}",
    "",
    "",
  ].join("\n");
  file.edit.appendLeft(fn.getStart(true), hold);
  file.edit.appendLeft(
    body.getStart() + 1,
    `\n  ${m} if (broadcastHolds.length > 0) return void broadcastHolds[broadcastHolds.length - 1].push([${type}, snapshotForHold(${data})]);`,
  );
  const props = (objects[0] as import("ts-morph").ObjectLiteralExpression).getProperties();
  if (props.length === 0) fail(file, "module.exports = { broadcast, … }", 0, "the exports object is empty.");
  file.edit.appendLeft(props[props.length - 1].getEnd(), `, ${m} holdBroadcasts`);
}

function verifyWebsocket(file: VerifyFile): string[] {
  const sf = file.ast;
  const problems: string[] = [];
  if (!topLevelFunction(sf, "holdBroadcasts")) problems.push("no function holdBroadcasts(): broadcasts cannot be held until COMMIT");
  const fn = sf.getStatements().find((s) => Node.isFunctionDeclaration(s) && s.getName() === "broadcast");
  const first = fn && Node.isFunctionDeclaration(fn) ? fn.getBody()?.asKind(SyntaxKind.Block)?.getStatements()[0] : undefined;
  if (!first || !first.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => id.getText() === "broadcastHolds")) {
    problems.push("broadcast() does not check the hold buffer before sending");
  }
  const exported = sf.getDescendantsOfKind(SyntaxKind.BinaryExpression).some((b) => {
    if (b.getLeft().getText().replace(/\s+/g, "") !== "module.exports") return false;
    const right = b.getRight();
    return Node.isObjectLiteralExpression(right) && !!right.getProperty("holdBroadcasts");
  });
  if (!exported) problems.push("holdBroadcasts is not exported");
  return problems;
}

// ── server/index.js ────────────────────────────────────────────────────────

const SHUTDOWN_SHAPE = "const shutdown = (signal) => { … } (or function shutdown(signal) { … })";

/** The body of upstream's graceful-shutdown function: `const shutdown = (signal) => {…}` or `function shutdown(…) {…}`. */
function shutdownBody(file: PatchFile | VerifyFile): Block | Finding {
  const vars = findAll(file, variableAnchor("shutdown"));
  const fns = findAll(file, functionAnchor("shutdown"));
  if (vars.length + fns.length !== 1) {
    const all = [...vars, ...fns].map((n) => n.getStartLineNumber()).join(", ");
    return vars.length + fns.length === 0 ? "no shutdown function" : `shutdown is declared ${vars.length + fns.length} times (lines ${all})`;
  }
  if (fns.length === 1) {
    const body = fns[0].getBody();
    return body && Node.isBlock(body) ? body : finding`function shutdown has no body (${frame(fns[0])})`;
  }
  const init = vars[0].getInitializer();
  if (!isFnLike(init) || !Node.isBlock(init.getBody())) return finding`shutdown is no longer an inline function (${frame(vars[0])})`;
  return init.getBody() as Block;
}

function applyIndex(file: PatchFile): void {
  const body = shutdownBody(file);
  if (isFinding(body)) {
    if (body === "no shutdown function") findOne(ID, file, { ...variableAnchor("shutdown"), shape: SHUTDOWN_SHAPE }); // throws, naming the nearest candidate
    fail(file, SHUTDOWN_SHAPE, 0, finding`${body}; upstream changed its shutdown path, so queued events would not be written on SIGTERM/SIGINT.`);
  }
  const first = body.getStatements()[0];
  const ind = first ? indentOf(file.text, first) : `${indentOf(file.text, body)}  `;
  const m = marker(ID);
  file.edit.appendLeft(
    body.getStart() + 1,
    [
      "",
      `${ind}${m} // Write every queued hook event (and answer its request) before anything closes.`,
      `${ind}try {`,
      `${ind}  require("./routes/hooks").writeQueue.close();`,
      `${ind}} catch (err) {`,
      `${ind}  console.warn("[write-queue] drain on shutdown failed:", err && err.message ? err.message : err);`,
      `${ind}}`,
    ].join("\n"),
  );
}

function verifyIndex(file: VerifyFile): string[] {
  const body = shutdownBody(file);
  const first = isFinding(body) ? undefined : body.getStatements()[0];
  const drains = !!first && first.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => /\.writeQueue\.close$/.test(c.getExpression().getText().replace(/\s+/g, "")));
  return drains ? [] : ["shutdown() does not drain the write queue first (queued events would be lost on SIGTERM/SIGINT)"];
}

// ── every route of the tree ────────────────────────────────────────────────

const ROUTE_METHOD = /^(post|put|patch|delete|all|get|use)$/;
/** What writes hook events: the ingestion functions, an events insert statement, or its SQL. */
function writesHookEvent(n: Node): boolean {
  if (Node.isIdentifier(n)) return /^processEvent(Core|Transaction)?$/.test(n.getText());
  if (Node.isCallExpression(n)) return /(^|\.)insertEvent\w*\.run$/.test(n.getExpression().getText().replace(/\s+/g, ""));
  if (Node.isStringLiteral(n) || Node.isNoSubstitutionTemplateLiteral(n)) return /INSERT\s+(OR\s+\w+\s+)?INTO\s+["`]?events\b/i.test(n.getLiteralText());
  return false;
}

interface RouteWrite {
  file: string;
  line: number;
  route: string;
  /** The handler's path to a hook-event write, or null (it enqueues, or writes none). */
  chain: Found | null;
  enqueues: boolean;
}

/** Route registrations `<x>.post("/path", …handlers)` of every upstream file that may write hook events, and what each handler reaches. */
function routeWrites(tree: TreeView): RouteWrite[] {
  const out: RouteWrite[] = [];
  for (const f of tree.jsFiles) {
    const text = tree.text(f);
    if (tree.isAdded(f) || !/\.(post|put|patch|delete|all|get|use)\s*\(/.test(text) || !/processEvent|insertEvent|INTO\s+["`]?events/i.test(text)) continue;
    const file = tree.file(f);
    const reach = { fns: functionsByName(file.ast), hit: writesHookEvent };
    for (const c of file.ast.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const callee = c.getExpression();
      const [first, ...handlers] = c.getArguments();
      const routePath = first && (Node.isStringLiteral(first) || Node.isNoSubstitutionTemplateLiteral(first)) ? first.getLiteralText() : null;
      if (!Node.isPropertyAccessExpression(callee) || !ROUTE_METHOD.test(callee.getName()) || !routePath?.startsWith("/") || handlers.length === 0) continue;
      const chain = handlers.map((h) => reachChain(h, reach)).find((x) => x) ?? null;
      const enqueues = handlers.some((h) => h.getDescendantsOfKind(SyntaxKind.CallExpression).some((x) => /(^|\.)writeQueue\.enqueue$/.test(x.getExpression().getText().replace(/\s+/g, ""))));
      out.push({ file: f, line: c.getStartLineNumber(), route: `${callee.getText()}(${first.getText()}, …)`, chain, enqueues });
    }
  }
  return out;
}

export default definePatch({
  id: ID,
  needs: ["transcript-outside-lock"],
  description: "Group commit for hook events: one IMMEDIATE transaction per batch, a SAVEPOINT per event, answers and broadcasts after COMMIT.",
  why:
    "Upstream writes each hook event in its own transaction and answers before anything guarantees durability; under concurrent " +
    "agents the per-event transactions contend for the write lock (SQLITE_BUSY, lost events), and WebSocket frames go out for " +
    "writes that may still roll back. Batching makes the lock cheap and a 200 mean the event is on disk.",
  removeWhen: "upstream batches hook writes itself (or moves ingestion off the request path with an equivalent durability contract).",
  targets: [HOOKS, WS, INDEX],
  adds: { [QUEUE_FILE]: queueSource },
  apply(file) {
    if (file.path === HOOKS) return applyHooks(file);
    if (file.path === WS) return applyWebsocket(file);
    if (file.path === INDEX) return applyIndex(file);
    throw new Error(`[${ID}] unexpected target ${file.path}`);
  },
  verify(file) {
    if (file.path === HOOKS) return verifyHooks(file);
    if (file.path === WS) return verifyWebsocket(file);
    if (file.path === INDEX) return verifyIndex(file);
    return [`unexpected target ${file.path}`];
  },
  // No route writes hook events except through the queue: a new route calling processEvent, or
  // inserting into events, would write outside group commit and answer before COMMIT.
  verifyTree(tree) {
    return routeWrites(tree)
      .filter((r) => r.chain)
      .map((r) => `${r.file}:${r.line} ${r.route} writes hook events outside the write queue (${r.chain}); route it through writeQueue.enqueue`);
  },
  reportTree(tree) {
    const routes = routeWrites(tree);
    const files = new Set(routes.map((r) => r.file));
    const queued = routes.filter((r) => r.enqueues).map((r) => `${r.file}:${r.line} ${r.route}`);
    return [`${routes.length} routes in ${files.size} files that mention hook-event writers checked (handlers followed through their module's functions): ${routes.filter((r) => r.chain).length} write hook events outside the queue; through writeQueue.enqueue: ${queued.join(", ") || "none"}`];
  },
  report(file) {
    if (file.path !== HOOKS) return [];
    const route = eventRoute(file);
    return isFinding(route) ? [] : [`${file.path}: POST /event enqueues (line ${route.handler.getStartLineNumber()}); answers only in the promise continuation after COMMIT`];
  },
});
