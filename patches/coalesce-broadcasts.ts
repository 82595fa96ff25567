// One session_updated per session and one agent_updated per agent per write-queue batch, each with the
// row as it is after COMMIT. The hold buffers write-queue adds to websocket.js coalesce their frames
// when they flush (the last frame per (type, id) wins, at the place of the first), and hooks.js's
// `broadcast("session_updated", stmts.getSession.get(id))` becomes
// `broadcast.latest("session_updated", id, (rowId) => stmts.getSession.get(rowId))`: inside a hold the
// row is read once, when the batch's frames go out, instead of once per broadcast; outside a hold it is
// read and sent at once, as before. new_event and every other frame are sent as they were, in order.
// The frames of a batch leave together: each client's socket is corked until the tick ends (one write
// per client and batch, not one per frame).
import { type CallExpression, Node, type ObjectLiteralExpression, SyntaxKind } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { topLevelFunction, topLevelNames } from "./lib/ast.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { findAll, findOne, frame, functionAnchor, stringValue } from "./lib/find.ts";

const ID = "coalesce-broadcasts";
const HOOKS = "server/routes/hooks.js";
const WS = "server/websocket.js";
/** The frame types that carry one row's current state: only the last per row and batch matters. */
export const ROW_TYPES = ["session_updated", "agent_updated"];
const OURS = ["coalesceHeldFrames", "sendHeldFrame", "broadcastLatest", "LatestRow", "rowReaders", "readRowsWhenSent", "corkClientsUntilTickEnd", "corkedUntilTickEnd"];

type AnyFile = PatchFile | VerifyFile;

function fail(file: AnyFile, expected: string, found: number, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, found, detail);
}

// ── server/routes/hooks.js ─────────────────────────────────────────────────

/** `<callee>("session_updated"|"agent_updated", <rows>.get(<id>))`: a row read per broadcast. */
export function eagerRowBroadcasts(file: AnyFile): { call: CallExpression; read: CallExpression }[] {
  const out: { call: CallExpression; read: CallExpression }[] = [];
  for (const call of findAll(file, {
    shape: 'call broadcast("session_updated", stmts.getSession.get(id))',
    kind: SyntaxKind.CallExpression,
    match: (n): n is CallExpression => Node.isCallExpression(n) && isBroadcastCallee(n) && ROW_TYPES.includes(stringValue(n.getArguments()[0]) ?? ""),
  })) {
    const data = call.getArguments()[1];
    if (!data || !Node.isCallExpression(data)) continue;
    const callee = data.getExpression();
    if (Node.isPropertyAccessExpression(callee) && callee.getName() === "get" && data.getArguments().length === 1) out.push({ call, read: data });
  }
  return out;
}

/** `broadcast(…)` or `<module>.broadcast(…)`, not yet `broadcast.latest(…)`. */
function isBroadcastCallee(call: CallExpression): boolean {
  const e = call.getExpression();
  return (Node.isIdentifier(e) && e.getText() === "broadcast") || (Node.isPropertyAccessExpression(e) && e.getName() === "broadcast");
}

function latestCalls(file: AnyFile): CallExpression[] {
  return file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => {
    const e = c.getExpression();
    return Node.isPropertyAccessExpression(e) && e.getName() === "latest" && /(^|\.)broadcast$/.test(e.getExpression().getText());
  });
}

function applyHooks(file: PatchFile): void {
  const sites = eagerRowBroadcasts(file);
  if (sites.length === 0) {
    fail(file, 'call broadcast("session_updated", stmts.getSession.get(id))', 0, "no broadcast of a session or agent row read in place; upstream changed how hooks.js broadcasts row updates.");
  }
  const m = marker(ID);
  for (const { call, read } of sites) {
    const rows = (read.getExpression() as import("ts-morph").PropertyAccessExpression).getExpression();
    if (rows.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => id.getText() === "rowId") || rows.getText() === "rowId") {
      fail(file, "a row reader that does not use the name rowId", 1, finding`${frame(call)} reads through rowId; rename ours.`);
    }
    file.edit.appendLeft(call.getExpression().getEnd(), `.latest`);
    file.edit.overwrite(read.getStart(), read.getEnd(), `${read.getArguments()[0].getText()}, ${m} (rowId) => ${rows.getText()}.get(rowId)`);
  }
  // The same readers, for the frames that carry a row read earlier (`if (sess) broadcast("session_updated", sess)`):
  // only module-level readers, which are still there when the batch's frames go out.
  const top = topLevelNames(file.ast);
  const readers = new Map<string, string>();
  for (const { call, read } of sites) {
    const rows = (read.getExpression() as import("ts-morph").PropertyAccessExpression).getExpression();
    const root = rows.getText().split(".")[0];
    const type = stringValue(call.getArguments()[0])!;
    if (!readers.has(type) && top.has(root) && /^[\w$.]+$/.test(rows.getText())) readers.set(type, `${JSON.stringify(type)}: (rowId) => ${rows.getText()}.get(rowId)`);
  }
  if (readers.size === 0) {
    fail(file, "a module-level row reader, e.g. stmts.getSession.get(id) with a top-level stmts", 0, finding`${frame(sites[0].call)}: every row is read through a local; cannot read rows again after COMMIT.`);
  }
  const last = file.ast.getStatements().at(-1)!;
  const callee = sites[0].call.getExpression().getText();
  file.edit.appendLeft(
    last.getStart(true),
    `${m}\n// Rows in held frames are read again once, after COMMIT (see websocket.js coalesceHeldFrames).\n${callee}.readRowsWhenSent({ ${[...readers.values()].join(", ")} });\n\n`,
  );
}

function verifyHooks(file: VerifyFile): Finding[] {
  const problems: Finding[] = eagerRowBroadcasts(file).map(({ call }) => finding`${frame(call)}: reads the row per broadcast instead of once per batch (broadcast.latest)`);
  if (latestCalls(file).length === 0) problems.push("no broadcast.latest(…) call: row updates are still read per event");
  const registered = file.ast.getStatements().some((st) => /(^|\.)broadcast\.readRowsWhenSent\(/.test(st.getText()));
  if (!registered) problems.push("no broadcast.readRowsWhenSent({ … }): rows read earlier in a batch would be sent as they were then");
  return problems;
}

// ── server/websocket.js ────────────────────────────────────────────────────

/** The `flush() { … }` of the object holdBroadcasts returns (added by write-queue). */
function holdFlush(file: AnyFile) {
  const hold = findOne(ID, file, functionAnchor("holdBroadcasts"));
  const flushes = hold.getDescendantsOfKind(SyntaxKind.MethodDeclaration).filter((md) => md.getName() === "flush");
  if (flushes.length !== 1) fail(file, "holdBroadcasts() returning { flush() { … } }", flushes.length, finding`${frame(hold)}: write-queue's hold buffer changed shape.`);
  return flushes[0];
}

const WS_CODE = (m: string) => `${m}
// Coalescing of held frames (see holdBroadcasts): a batch sends one frame per row of
// ${ROW_TYPES.join(" and ")}, the last one (a deferred read, if any: it sees the row after COMMIT),
// where the first stood; every other frame as it was.
// broadcast.latest(type, id, read) defers the row read itself: inside a hold it is read once, when
// the frames are finally sent (after COMMIT), so a batch reads each session and agent once.
class LatestRow {
  constructor(key, read) {
    this.key = key;
    this.read = read;
  }
}

function broadcastLatest(type, key, read) {
  if (broadcastHolds.length > 0) return void broadcastHolds[broadcastHolds.length - 1].push([type, new LatestRow(key, read)]);
  const row = read(key);
  if (row !== undefined && row !== null) broadcast(type, row);
}

const COALESCED_TYPES = new Set(${JSON.stringify(ROW_TYPES)});
// type -> (id) => row, registered by the module that owns the rows (hooks.js): a held frame that
// carries a row read earlier in the batch is read again, once, when the batch's frames go out.
const rowReaders = new Map();

function readRowsWhenSent(readers) {
  for (const [type, read] of Object.entries(readers)) if (COALESCED_TYPES.has(type)) rowReaders.set(type, read);
}

// The outermost hold's frames go out together: each client's socket is corked until this tick ends,
// so a batch costs one write (one writev syscall) per client instead of one per frame and client.
let corkedUntilTickEnd = false;
function corkClientsUntilTickEnd() {
  if (!wss || corkedUntilTickEnd) return;
  const sockets = [];
  wss.clients.forEach((client) => {
    const socket = client.readyState === 1 ? client._socket : null;
    if (socket && typeof socket.cork === "function" && typeof socket.uncork === "function") {
      socket.cork();
      sockets.push(socket);
    }
  });
  if (sockets.length === 0) return;
  corkedUntilTickEnd = true;
  process.nextTick(() => {
    corkedUntilTickEnd = false;
    for (const socket of sockets) socket.uncork();
  });
}

function coalesceHeldFrames(frames) {
  if (broadcastHolds.length === 0 && frames.length > 1) corkClientsUntilTickEnd();
  const out = [];
  const at = new Map();
  for (let entry of frames) {
    const [type, data] = entry;
    const key = !COALESCED_TYPES.has(type) ? undefined : data instanceof LatestRow ? data.key : data && data.id;
    if (key === undefined || key === null) {
      out.push(entry);
      continue;
    }
    if (!(data instanceof LatestRow) && rowReaders.has(type)) entry = [type, new LatestRow(key, rowReaders.get(type))];
    const slot = at.get(type + "\\u0000" + key);
    if (slot === undefined) at.set(type + "\\u0000" + key, out.push(entry) - 1);
    // A deferred read beats a snapshot taken before it: it reads the row after COMMIT.
    else if (!(out[slot][1] instanceof LatestRow) || entry[1] instanceof LatestRow) out[slot] = entry;
  }
  return out;
}

// A flushed frame goes into the enclosing hold as it is (already a snapshot), or out.
function sendHeldFrame(type, data) {
  if (data instanceof LatestRow) return broadcastLatest(type, data.key, data.read);
  if (broadcastHolds.length > 0) return void broadcastHolds[broadcastHolds.length - 1].push([type, data]);
  broadcast(type, data);
}

broadcast.latest = broadcastLatest;
broadcast.readRowsWhenSent = readRowsWhenSent;

`;

function applyWebsocket(file: PatchFile): void {
  const taken = topLevelNames(file.ast);
  for (const name of OURS) if (taken.has(name)) fail(file, `no existing top-level ${name}`, 1, `websocket.js already declares ${name}; upstream added its own? Rename ours.`);
  if (!taken.has("broadcastHolds")) fail(file, "const broadcastHolds = [] (write-queue's hold stack)", 0, "write-queue's hold buffers are missing.");
  if (!taken.has("wss")) fail(file, "let wss = null (the WebSocket server whose clients broadcast() writes to)", 0, "websocket.js keeps its WebSocket server under another name; the batch's frames cannot be corked per client.");
  const flush = holdFlush(file);
  const loops = flush.getDescendantsOfKind(SyntaxKind.ForOfStatement);
  const loop = loops.length === 1 ? loops[0] : undefined;
  const send = loop?.getStatement();
  const sendCall = send && Node.isExpressionStatement(send) ? send.getExpression() : undefined;
  if (!loop || loop.getExpression().getText() !== "frames" || !sendCall || !Node.isCallExpression(sendCall) || sendCall.getExpression().getText() !== "broadcast") {
    fail(file, "flush() { … for (const [type, data] of frames) broadcast(type, data); }", loops.length, finding`${frame(flush)}: write-queue's flush changed.`);
  }
  const m = marker(ID);
  file.edit.overwrite(loop.getExpression().getStart(), loop.getExpression().getEnd(), `${m} coalesceHeldFrames(frames)`);
  file.edit.overwrite(sendCall.getExpression().getStart(), sendCall.getExpression().getEnd(), "sendHeldFrame");
  const hold = findOne(ID, file, functionAnchor("holdBroadcasts"));
  file.edit.appendLeft(hold.getStart(true), WS_CODE(m));
  const exportsObject = moduleExports(file);
  if (!exportsObject) fail(file, "module.exports = { …, holdBroadcasts }", 0, "websocket.js no longer exports one object literal.");
  const props = exportsObject.getProperties();
  file.edit.appendLeft(props[props.length - 1].getEnd(), `, ${m} broadcastLatest`);
}

function moduleExports(file: AnyFile): ObjectLiteralExpression | undefined {
  const assigns = file.ast.getDescendantsOfKind(SyntaxKind.BinaryExpression).filter((b) => b.getLeft().getText().replace(/\s+/g, "") === "module.exports");
  const right = assigns.length === 1 ? assigns[0].getRight() : undefined;
  return right && Node.isObjectLiteralExpression(right) ? right : undefined;
}

function verifyWebsocket(file: VerifyFile): string[] {
  const problems: string[] = [];
  for (const name of ["coalesceHeldFrames", "broadcastLatest", "sendHeldFrame"]) {
    if (!topLevelFunction(file.ast, name)) problems.push(`no function ${name}(): held broadcasts are not coalesced`);
  }
  const coalesce = topLevelFunction(file.ast, "coalesceHeldFrames");
  const corks = coalesce?.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => c.getExpression().getText() === "corkClientsUntilTickEnd");
  if (!topLevelFunction(file.ast, "corkClientsUntilTickEnd") || (coalesce && !corks)) problems.push("a batch's frames are not corked per client (corkClientsUntilTickEnd): one write per frame and client");
  const hold = topLevelFunction(file.ast, "holdBroadcasts");
  const flush = hold?.getDescendantsOfKind(SyntaxKind.MethodDeclaration).find((md) => md.getName() === "flush");
  const loop = flush?.getDescendantsOfKind(SyntaxKind.ForOfStatement)[0];
  const over = loop?.getExpression();
  if (!over || !Node.isCallExpression(over) || over.getExpression().getText() !== "coalesceHeldFrames") problems.push("holdBroadcasts().flush() does not send coalesceHeldFrames(frames)");
  const assigned = file.ast.getStatements().some((s) => s.getText().replace(/\s+/g, "") === "broadcast.latest=broadcastLatest;");
  if (!assigned) problems.push("broadcast.latest is not set: callers cannot defer their row reads");
  if (!file.ast.getStatements().some((s) => s.getText().replace(/\s+/g, "") === "broadcast.readRowsWhenSent=readRowsWhenSent;")) problems.push("broadcast.readRowsWhenSent is not set");
  if (!moduleExports(file)?.getProperty("broadcastLatest")) problems.push("broadcastLatest is not exported");
  return problems;
}

// ── the whole tree ─────────────────────────────────────────────────────────

/**
 * Row frames that would escape the coalescing: a module other than websocket.js building a
 * `{ type: "session_updated" | "agent_updated", … }` frame of its own (sent past broadcast()), and a
 * broadcast of a row read in place in hooks.js, whose functions run inside the write queue's holds.
 */
function treeProblems(tree: TreeView): { problems: string[]; eager: number; files: number } {
  const problems: string[] = [];
  let files = 0;
  for (const path of tree.jsFiles) {
    if (path === WS || tree.isAdded(path) || /(^|\/)__tests__\//.test(path)) continue;
    const text = tree.text(path);
    if (!ROW_TYPES.some((t) => text.includes(t))) continue;
    files++;
    const file = tree.file(path);
    for (const prop of file.ast.getDescendantsOfKind(SyntaxKind.PropertyAssignment)) {
      if (prop.getName() !== "type" || !ROW_TYPES.includes(stringValue(prop.getInitializer()) ?? "")) continue;
      const sent = prop.getFirstAncestor((a) => Node.isCallExpression(a) && /(^|\.)(send|stringify)$/.test(a.getExpression().getText()));
      if (sent) problems.push(`${path}:${prop.getStartLineNumber()} sends its own ${stringValue(prop.getInitializer())} frame (${frame(sent)}), past broadcast() and its coalescing`);
    }
  }
  let eager = 0;
  if (tree.jsFiles.includes(HOOKS)) {
    for (const { call } of eagerRowBroadcasts(tree.file(HOOKS))) {
      eager++;
      problems.push(`${HOOKS}:${call.getStartLineNumber()} ${call.getText().split("\n")[0]}: reads the row per event inside the write queue; use broadcast.latest`);
    }
  }
  return { problems, eager, files };
}

export default definePatch({
  id: ID,
  description: "Per write-queue batch: one session_updated per session and one agent_updated per agent (read once, after COMMIT); other frames unchanged; a batch's frames leave in one write per client.",
  why:
    "Every hook event broadcast its session and its agent, each read from the database and JSON-encoded for every client (upstream's " +
    "processEvent makes up to 27 broadcast calls and 37 reads). With a page open, each session_updated frame made the Sessions page " +
    "reload its list: 15–24 API requests per second that the hooks wait behind. A batch of 100 events for 22 sessions now sends 22 " +
    "session frames, read once each. Each frame was also its own write (a writev syscall) per client: with two pages open " +
    "that was 2.5 s of a 37 s server profile (22 agents, large history); the batch's frames now leave corked, one write per client.",
  removeWhen: "Upstream coalesces its broadcasts per transaction (or per tick) and reads each row once per flush.",
  needs: ["write-queue"],
  targets: [WS, HOOKS],
  apply(file) {
    if (file.path === WS) applyWebsocket(file);
    else applyHooks(file);
  },
  verify(file) {
    return file.path === WS ? verifyWebsocket(file) : verifyHooks(file);
  },
  report(file) {
    return file.path === HOOKS ? [`${latestCalls(file).length} row broadcasts read once per batch (broadcast.latest)`] : [];
  },
  verifyTree(tree) {
    return treeProblems(tree).problems;
  },
  reportTree(tree) {
    const { files, eager } = treeProblems(tree);
    return [`${files} files that name ${ROW_TYPES.join("/")} checked: 0 frames sent past broadcast(); ${eager} rows read per event in ${HOOKS}`];
  },
});
