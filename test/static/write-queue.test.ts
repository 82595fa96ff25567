// Static check of write-queue on trees this test builds itself (the fixture, and the real upstream
// when AGENT_MONITOR_UPSTREAM is set): POST /event validates, reads the transcript outside the lock
// and enqueues; every answer after the enqueue sits in the promise continuation (after COMMIT); the
// post-commit work left the handler for afterEventCommit; the queue writes through processEventCore
// with broadcasts held; websocket.js can hold broadcasts; index.js drains the queue first on
// SIGTERM/SIGINT; server/patch-runtime/write-queue.js is our runtime module, byte for byte.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type ArrowFunction, type FunctionExpression, Node, type SourceFile, SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { callAnchor, findAll } from "../../patches/lib/find.ts";
import { parseJs, verifyView } from "../../scripts/pipeline/patch.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";
const WS = "server/websocket.js";
const INDEX = "server/index.js";
const QUEUE = "server/patch-runtime/write-queue.js";

if (!realUpstream) console.info(`[write-queue static] ${SKIP_REAL}`);

function ast(outDir: string, file: string): SourceFile {
  return parseJs(file, readFileSync(path.join(outDir, file), "utf8"));
}

function eventHandler(outDir: string): ArrowFunction | FunctionExpression {
  const text = readFileSync(path.join(outDir, HOOKS), "utf8");
  const calls = findAll(verifyView(HOOKS, text), callAnchor("router.post", "/event"));
  expect(calls).toHaveLength(1);
  const handler = calls[0].getArguments().at(-1)!;
  expect(Node.isArrowFunction(handler) || Node.isFunctionExpression(handler)).toBe(true);
  return handler as ArrowFunction | FunctionExpression;
}

const callee = (c: import("ts-morph").CallExpression) => c.getExpression().getText().replace(/\s+/g, "");

describe.each(trees())("write-queue in the generated %s tree", (_label, buildTree) => {
  it("applied to hooks.js, websocket.js, index.js and added server/patch-runtime/write-queue.js (our runtime, unchanged)", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === "write-queue").map((r) => [r.file, r.action])).toEqual([
      [HOOKS, "applied"],
      [WS, "applied"],
      [INDEX, "applied"],
      [QUEUE, "applied"],
    ]);
    expect(readFileSync(path.join(outcome.outDir, QUEUE), "utf8")).toBe(readFileSync(path.join(repoRoot, "patches", "runtime", "write-queue.js"), "utf8"));
  });

  it("POST /event validates, reads the transcript outside the lock, enqueues, and answers only in the continuation", async () => {
    const { outDir } = await buildTree();
    const handler = eventHandler(outDir);
    const calls = handler.getDescendantsOfKind(SyntaxKind.CallExpression);
    // no direct write any more
    expect(calls.map(callee).filter((c) => c === "processEvent" || c === "processEventCore")).toEqual([]);
    const enqueue = calls.filter((c) => callee(c) === "writeQueue.enqueue");
    expect(enqueue).toHaveLength(1);
    // the item carries the transcript read by extractTranscriptForEvent (evaluated before enqueue, outside the lock)
    const item = enqueue[0].getArguments()[0];
    expect(Node.isObjectLiteralExpression(item)).toBe(true);
    const transcriptProp = (item as import("ts-morph").ObjectLiteralExpression).getProperty("transcriptData");
    expect(transcriptProp?.getText()).toMatch(/^transcriptData: extractTranscriptForEvent\(hook_type, data\)$/);
    // validation (400 INVALID_INPUT) happens before the enqueue, directly in the handler
    const before = calls.filter((c) => c.getEnd() < enqueue[0].getStart() && /^res\./.test(callee(c)));
    expect(before.length).toBeGreaterThanOrEqual(1);
    // every answer after it is inside .then(...) / .catch(...) on the enqueue's promise
    const after = calls.filter((c) => c.getStart() > enqueue[0].getStart() && (/^res\./.test(callee(c)) || callee(c) === "sendWriteQueueError"));
    expect(after.length).toBeGreaterThanOrEqual(2); // 400 MISSING_SESSION, 200, errors
    for (const c of after) {
      const continuation = c.getAncestors().find((a) => {
        if (a === handler || !(Node.isArrowFunction(a) || Node.isFunctionExpression(a))) return false;
        const parent = a.getParent();
        if (!parent || !Node.isCallExpression(parent)) return false;
        const name = parent.getExpression();
        return Node.isPropertyAccessExpression(name) && ["then", "catch"].includes(name.getName());
      });
      expect(continuation, `answered outside the continuation: ${c.getText().slice(0, 60)}`).toBeDefined();
    }
    // the 200 and the MISSING_SESSION 400 are in the .then of the enqueue; errors go through sendWriteQueueError in .catch
    const texts = after.map((c) => c.getText());
    expect(texts.some((t) => /^res\.json\(\{ ok: true, event: result \}\)$/.test(t))).toBe(true);
    expect(texts.some((t) => /MISSING_SESSION/.test(t))).toBe(true);
    expect(after.some((c) => callee(c) === "sendWriteQueueError")).toBe(true);
  });

  it("a full queue is refused before the transcript is read: refusal() and its 503 come before the read and the enqueue; the gate catches the old order", async () => {
    const { outDir } = await buildTree();
    const handler = eventHandler(outDir);
    const statements = handler.getBody().asKindOrThrow(SyntaxKind.Block).getStatements();
    const at = (pattern: RegExp) => statements.findIndex((st) => st.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => pattern.test(callee(c))));
    const ask = at(/^writeQueue\.refusal$/);
    expect(ask).toBeGreaterThanOrEqual(0);
    expect(statements[ask + 1].getText()).toBe("if (refused) return sendWriteQueueError(res, refused);");
    expect(at(/^extractTranscriptForEvent$/)).toBeGreaterThan(ask + 1);
    expect(at(/^writeQueue\.enqueue$/)).toBeGreaterThan(ask + 1);
    // mutation: the refusal moved after the read/enqueue statement -> write-queue's verify names it
    const text = readFileSync(path.join(outDir, HOOKS), "utf8");
    const refusal = statements.slice(ask, ask + 2);
    const work = statements[at(/^writeQueue\.enqueue$/)];
    const moved = text.slice(0, refusal[0].getStart()) + text.slice(refusal[1].getEnd(), work.getEnd()) + "\n  " + refusal.map((s) => s.getText()).join("\n  ") + text.slice(work.getEnd());
    const writeQueue = patches.find((p) => p.id === "write-queue")!;
    expect(writeQueue.verify(verifyView(HOOKS, text))).toEqual([]);
    expect(writeQueue.verify(verifyView(HOOKS, moved)).join("\n")).toMatch(/the transcript is read or the event enqueued before a full queue is refused/);
  });

  it("post-commit work (alerts, subagent import, workflow ingest) left the handler for afterEventCommit", async () => {
    const { outDir } = await buildTree();
    const hooks = ast(outDir, HOOKS);
    const handler = eventHandler(outDir);
    const postCommit = ["evaluateEvent", "scanAndImportSubagents", "ingestWorkflowsForSession"];
    expect(handler.getDescendantsOfKind(SyntaxKind.CallExpression).map(callee).filter((c) => postCommit.includes(c))).toEqual([]);
    const after = hooks.getStatements().find((s) => Node.isFunctionDeclaration(s) && s.getName() === "afterEventCommit");
    expect(after).toBeDefined();
    const moved = after!.getDescendantsOfKind(SyntaxKind.CallExpression).map(callee);
    for (const name of postCommit) expect(moved, name).toContain(name);
  });

  it("the queue writes each event through processEventCore, holds broadcasts, and is exposed with its stats route", async () => {
    const hooks = ast((await buildTree()).outDir, HOOKS);
    const decl = hooks.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === "writeQueue");
    const init = decl?.getInitializer();
    expect(init && Node.isCallExpression(init) && callee(init)).toBe("createWriteQueue");
    const opts = (init as import("ts-morph").CallExpression).getArguments()[0] as import("ts-morph").ObjectLiteralExpression;
    // spool-hook-events (a later patch) wraps it in spoolEventIds.run(…) to store each event id once.
    expect(opts.getProperty("run")?.getText()).toMatch(/^run: (spoolEventIds\.run\()?\(item\) => processEventCore\(item\.hookType, item\.data, item\.transcriptData\)\)?$/);
    expect(opts.getProperty("holdBroadcasts")?.getText()).toBe('holdBroadcasts: require("../websocket").holdBroadcasts');
    expect(opts.getProperty("afterCommit")?.getText()).toMatch(/afterEventCommit\(item\.hookType, item\.data, result\)/);
    expect(hooks.getText()).toContain("router.writeQueue = writeQueue;");
    const stats = findAll(verifyView(HOOKS, hooks.getFullText()), callAnchor("router.get", "/write-queue/stats"));
    expect(stats).toHaveLength(1);
  });

  it("websocket.js: broadcast checks the hold buffer first, and holdBroadcasts is exported", async () => {
    const ws = ast((await buildTree()).outDir, WS);
    const broadcast = ws.getStatements().find((s) => Node.isFunctionDeclaration(s) && s.getName() === "broadcast") as import("ts-morph").FunctionDeclaration;
    const first = broadcast.getBody()!.asKindOrThrow(SyntaxKind.Block).getStatements()[0];
    expect(first.getText()).toMatch(/^if \(broadcastHolds\.length > 0\) return void broadcastHolds\[broadcastHolds\.length - 1\]\.push\(\[type, snapshotForHold\(data\)\]\);$/);
    expect(ws.getStatements().some((s) => Node.isFunctionDeclaration(s) && s.getName() === "holdBroadcasts")).toBe(true);
    const exportsObj = ws.getDescendantsOfKind(SyntaxKind.BinaryExpression).find((b) => b.getLeft().getText() === "module.exports")!.getRight();
    expect(Node.isObjectLiteralExpression(exportsObj) && exportsObj.getProperty("holdBroadcasts")).toBeTruthy();
  });

  it("index.js: the shutdown handler drains the queue before it closes anything", async () => {
    const index = ast((await buildTree()).outDir, INDEX);
    const decl = index.getDescendantsOfKind(SyntaxKind.VariableDeclaration).filter((d) => d.getName() === "shutdown");
    expect(decl).toHaveLength(1);
    const fn = decl[0].getInitializer() as ArrowFunction;
    const statements = fn.getBody().asKindOrThrow(SyntaxKind.Block).getStatements();
    expect(statements[0].getDescendantsOfKind(SyntaxKind.CallExpression).map(callee)).toContain('require("./routes/hooks").writeQueue.close');
    // ... and the database is closed only later in the same function
    const closeDbAt = statements.findIndex((s) => /\.close\(\)/.test(s.getText()) && /db/.test(s.getText()));
    expect(closeDbAt === -1 || closeDbAt > 0).toBe(true);
  });
});
