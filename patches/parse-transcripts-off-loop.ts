// First reads of large transcripts happen in a worker thread, so one resumed session's multi-MB
// transcript no longer stalls every other hook request on the event loop.
import { readFileSync } from "node:fs";
import { type CallExpression, Node, SyntaxKind } from "ts-morph";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { isFnLike, topLevelNames } from "./lib/ast.ts";
import { callAnchor, findOne, frame } from "./lib/find.ts";
import { finding, PatchTargetError } from "./lib/errors.ts";

const ID = "parse-transcripts-off-loop";
const HOOKS = "server/routes/hooks.js";
const RUNTIME_FILE = "server/patch-runtime/transcript-prefetch.js";
const runtimeSource = readFileSync(new URL("./runtime/transcript-prefetch.js", import.meta.url), "utf8");
const PREFETCH = "transcriptPrefetch";
const ENQUEUE = "writeQueue.enqueue";

const DECLARATION = `${marker(ID)}
// First reads of large transcripts are parsed in a worker thread and handed to transcriptCache, so
// they do not stall other requests; a hook's requests still reach the write queue in arrival order.
const ${PREFETCH} = require("../patch-runtime/transcript-prefetch").createTranscriptPrefetcher({
  cache: transcriptCache,
  cacheModule: require.resolve("../lib/transcript-cache"),
});
router.get("/transcript-prefetch/stats", (_req, res) => res.json(${PREFETCH}.stats()));

`;

type AnyFile = PatchFile | VerifyFile;

/** The `writeQueue.enqueue({ …, data: X, … })` call in POST /event, and its statement. */
function enqueueInRoute(file: AnyFile) {
  const route = findOne(ID, file, callAnchor("router.post", "/event"));
  const enqueue = findOne(ID, file, { ...callAnchor(ENQUEUE), shape: `call ${ENQUEUE}({ hookType, data, transcriptData }) in POST /event (from write-queue)`, within: route });
  const statement = enqueue.getFirstAncestorByKind(SyntaxKind.ExpressionStatement);
  const arg = enqueue.getArguments()[0];
  const dataProp = arg && Node.isObjectLiteralExpression(arg) ? arg.getProperty("data") : undefined;
  return { route, enqueue, statement, dataProp };
}

/** `transcriptPrefetch.run(<path>, () => …)` wrapping the enqueue, if present. */
function wrappingRun(enqueue: CallExpression): CallExpression | undefined {
  return enqueue.getAncestors().find((a): a is CallExpression => {
    if (!Node.isCallExpression(a) || a.getExpression().getText() !== `${PREFETCH}.run`) return false;
    const fn = a.getArguments()[1];
    return isFnLike(fn) && fn.containsRange(enqueue.getPos(), enqueue.getEnd());
  });
}

export default definePatch({
  id: ID,
  needs: ["write-queue"],
  description: "Large transcripts are first parsed in a worker thread; the hook route waits for that, not the event loop.",
  why:
    "Upstream's TranscriptCache reads and parses a transcript synchronously. The first read of a multi-MB transcript (a resumed " +
    "or imported session) takes tens of ms (34 ms for 4.5 MB here) during which no other hook is served; 16 such sessions starting " +
    "together stalled the server ~0.5 s and put every request behind them into the p99 (200-400 ms at 64 agents vs 85 ms without).",
  removeWhen: "Upstream reads transcripts asynchronously or off the main thread.",
  targets: [HOOKS],
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply(file) {
    const { route, enqueue, statement, dataProp } = enqueueInRoute(file);
    if (!statement || statement.getParent()?.getParent() !== route.getArguments().at(-1)) {
      throw new PatchTargetError(ID, file.path, `${ENQUEUE}(…) as a statement of the POST /event handler`, 0, finding`Found ${frame(enqueue)}.`);
    }
    if (!dataProp || !Node.isPropertyAssignment(dataProp)) {
      throw new PatchTargetError(ID, file.path, `${ENQUEUE}({ …, data: <hook data>, … })`, 0, finding`Found ${frame(enqueue)}. The write-queue item changed shape.`);
    }
    if (!topLevelNames(file.ast).has("transcriptCache")) {
      throw new PatchTargetError(ID, file.path, "module-level const transcriptCache = new TranscriptCache()", 0, "The prefetcher fills that cache; renamed upstream?");
    }
    const routeStatement = route.getFirstAncestorByKindOrThrow(SyntaxKind.ExpressionStatement);
    file.edit.prependLeft(routeStatement.getStart(), DECLARATION);
    const expr = statement.getExpression();
    const path = `${dataProp.getInitializerOrThrow().getText()}.transcript_path`;
    // The wrapped chain answers every outcome itself (write-queue's .then/.catch), so run() needs no
    // error path of its own; it only logs a synchronous throw, which extract() never does.
    file.edit.prependLeft(expr.getStart(), `${marker(ID)} ${PREFETCH}.run(${path}, () => `);
    file.edit.appendLeft(expr.getEnd(), ")");
  },
  verify(file) {
    const problems: string[] = [];
    const decl = file.ast.getVariableDeclaration(PREFETCH);
    if (!decl || !/createTranscriptPrefetcher\(/.test(decl.getInitializer()?.getText() ?? "")) {
      problems.push(`no module-level const ${PREFETCH} = require("../patch-runtime/transcript-prefetch").createTranscriptPrefetcher(…)`);
    }
    const enqueues = file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => c.getExpression().getText() === ENQUEUE);
    if (enqueues.length !== 1) problems.push(`expected 1 ${ENQUEUE}(…) call, found ${enqueues.length}`);
    else if (!wrappingRun(enqueues[0])) problems.push(`${ENQUEUE}(…) in POST /event does not wait for ${PREFETCH}.run(<transcript path>, () => …)`);
    return problems;
  },
  report(file) {
    const enq = file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => c.getExpression().getText() === ENQUEUE);
    return enq ? [`${file.path}: POST /event enqueues (line ${enq.getStartLineNumber()}) after ${PREFETCH}.run(…): large first transcript reads in a worker`] : [];
  },
});
