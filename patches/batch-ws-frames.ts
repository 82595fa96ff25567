// The App hands each WebSocket frame to the event bus through a batcher (client/src/lib/frame-batch.ts,
// source: patches/runtime/client/frame-batch.ts): the frames of a burst reach the pages in one task,
// at most one batch every ~250 ms, so a page that sets state per frame renders once per batch.
import { readFileSync } from "node:fs";
import { Node, SyntaxKind, type CallExpression } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { afterImports, hasNamedImport, importSpecifier, isFnLike, localDeclaration } from "./lib/ast.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { at, callAnchor, findAll, findOne, nearestCandidate } from "./lib/find.ts";

const ID = "batch-ws-frames";
const M = marker(ID);
const APP = "client/src/App.tsx";
export const FRAME_BATCH_FILE = "client/src/lib/frame-batch.ts";
const frameBatchSource = readFileSync(new URL("./runtime/client/frame-batch.ts", import.meta.url), "utf8");
const WS_HOOK = callAnchor("useWebSocket");
const PUBLISH = "eventBus.publish";
const BATCHED = "publishInBatches";

/**
 * Direct publishes reviewed and left as they are, each with why: `<file>#<enclosing function>`.
 * They are not WebSocket frames, so there is no stream of them to batch.
 */
export const REVIEWED_DIRECT: Record<string, string> = {
  "client/src/components/UpdateNotifier.tsx#UpdateNotifier":
    "not a WebSocket frame: one update_status message after the component's own GET at mount, so the other update subscribers see the same answer at once",
};

type AnyFile = PatchFile | VerifyFile;

const isPublish = (c: CallExpression) => c.getExpression().getText().replace(/\s/g, "") === PUBLISH;
const isBatched = (c: CallExpression) => c.getExpression().getText() === BATCHED;

/** The function the App hands to useWebSocket: inline, or a local `const onMessage = useCallback(fn, deps)` / `= fn`. */
function handlerOf(call: CallExpression): Node | null {
  let arg: Node | undefined = call.getArguments()[0];
  if (arg && Node.isIdentifier(arg)) {
    const decl = localDeclaration(call.getSourceFile(), arg.getText());
    arg = decl && Node.isVariableDeclaration(decl) ? decl.getInitializer() : decl;
  }
  if (arg && Node.isCallExpression(arg) && arg.getExpression().getText() === "useCallback") arg = arg.getArguments()[0];
  return arg && (isFnLike(arg) || Node.isFunctionDeclaration(arg)) ? arg : null;
}

const callsIn = (fn: Node) => fn.getDescendantsOfKind(SyntaxKind.CallExpression);

const hasImport = (file: AnyFile) => hasNamedImport(file.text, BATCHED, "lib/frame-batch");

function apply(file: PatchFile): void {
  const hook = findOne(ID, file, WS_HOOK);
  const handler = handlerOf(hook);
  if (!handler) {
    throw new PatchTargetError(ID, file.path, "useWebSocket(onMessage) with onMessage a function (inline, or const onMessage = useCallback((msg) => …))", 0,
      finding`Nearest candidate: ${at(hook)}: ${hook.getText().split("\n")[0]} (its argument is not a function the patch can read).`);
  }
  const calls = callsIn(handler);
  const publishes = calls.filter(isPublish);
  if (publishes.length === 0 && !calls.some(isBatched)) {
    const near = nearestCandidate(calls, `${PUBLISH}(msg)`);
    throw new PatchTargetError(ID, file.path, `call ${PUBLISH}(msg) in the function handed to useWebSocket`, 0,
      near ? finding`Nearest candidate: ${at(near)}: ${near.getText().split("\n")[0]}` : finding`The handler at ${at(handler)} makes no call. Renamed or removed upstream?`);
  }
  for (const call of publishes) {
    const bus = call.getExpression().getText().replace(/\.publish$/, "").trim();
    file.edit.overwrite(call.getStart(), call.getArguments()[0]?.getStart() ?? call.getEnd() - 1, `${M} ${BATCHED}(${bus}, `);
  }
  if (!hasImport(file)) file.edit.appendLeft(afterImports(file.ast), `\n${M}\nimport { ${BATCHED} } from "${importSpecifier(file.path, FRAME_BATCH_FILE)}";`);
}

function verify(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  const hooks = findAll(file, WS_HOOK);
  for (const hook of hooks) {
    const handler = handlerOf(hook);
    if (!handler) problems.push(finding`${at(hook)}: useWebSocket's handler is not a function the gate can read`);
    else {
      const calls = callsIn(handler);
      for (const c of calls.filter(isPublish)) problems.push(finding`${at(c)}: the WebSocket handler calls ${PUBLISH} directly (one task per frame), not ${BATCHED}`);
      if (!calls.some(isBatched)) problems.push(finding`${at(handler)}: the WebSocket handler does not call ${BATCHED}`);
    }
  }
  if (hooks.length === 0) problems.push(`no useWebSocket(…) call`);
  if (!hasImport(file)) problems.push(`no import of ${BATCHED} from ${FRAME_BATCH_FILE}`);
  return problems;
}

/** The name of the function a node is in (`function X` or `const X = …`), for the reviewed list. */
function enclosingName(node: Node): string {
  for (const a of node.getAncestors()) {
    if (Node.isFunctionDeclaration(a) && a.getName()) return a.getName()!;
    if (Node.isVariableDeclaration(a) && isFnLike(a.getInitializer())) return a.getName();
  }
  return "(module)";
}

const isTestFile = (f: string) => /\.(test|spec)\.[jt]sx?$/.test(f);

/** Every eventBus.publish call in the client's sources (tests and the batcher aside), direct or reviewed. */
function scan(tree: TreeView): { direct: string[]; exceptions: string[]; handlers: number } {
  const direct: string[] = [];
  const exceptions: string[] = [];
  let handlers = 0;
  for (const f of tree.clientFiles) {
    if (f === FRAME_BATCH_FILE || isTestFile(f)) continue;
    const text = tree.text(f);
    if (text.includes("useWebSocket(")) handlers += findAll(tree.file(f), WS_HOOK).length;
    if (!/eventBus\s*\.\s*publish\s*\(/.test(text)) continue;
    for (const c of findAll(tree.file(f), callAnchor(PUBLISH))) {
      const within = enclosingName(c);
      const key = `${f}#${within}`;
      const line = `${f}:${c.getStartLineNumber()} ${PUBLISH} outside the batcher (in ${within})`;
      if (REVIEWED_DIRECT[key] !== undefined) exceptions.push(`${line}: reviewed, ${REVIEWED_DIRECT[key]}`);
      else direct.push(`${line}: WebSocket frames must reach the pages through ${BATCHED}`);
    }
  }
  return { direct, exceptions, handlers };
}

export default definePatch({
  id: ID,
  description: "WebSocket frames reach the event bus in batches (one task per ~250 ms burst, in order, none dropped), so pages render once per batch",
  why: "Upstream publishes each frame in its own task, and the Dashboard sets state on every new_event frame: with 22 agents it re-renders and re-lays out 120–170 times a second, 48–60 % of its main thread in long tasks, CPU the server needs on a 2-core machine (issue #13, page profile).",
  removeWhen: "Upstream batches WebSocket frames (or its pages stop setting state per frame).",
  targets: [APP],
  adds: { [FRAME_BATCH_FILE]: frameBatchSource },
  apply,
  verify,
  verifyTree(tree) {
    const problems = scan(tree).direct;
    if (!tree.clientFiles.includes(FRAME_BATCH_FILE)) problems.push(`${FRAME_BATCH_FILE}: missing (the batcher the App imports)`);
    return problems;
  },
  reportTree(tree) {
    const s = scan(tree);
    return [`${tree.clientFiles.length} client files scanned, ${s.handlers} useWebSocket handler(s), ${s.direct.length} direct publishes, ${s.exceptions.length} reviewed exceptions`, ...s.exceptions];
  },
});
