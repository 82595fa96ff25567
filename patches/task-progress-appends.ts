// Task progress (the todo summaries the Sessions and Dashboard pages ask for with include_task_progress)
// from the lines a transcript gained, not from the whole transcript again. Upstream's parseTranscript
// caches by size and mtime, so a live agent's transcript, which grows with every hook, was read and
// JSON-parsed whole (up to 32 MB) on every page reload, synchronously, on the event loop that answers
// the hooks. parseTranscript now asks server/patch-runtime/task-progress-appends.js first: it keeps each
// transcript's observations and open tool calls up to its last complete line and parses what was
// appended (upstream's own observationsFromEntry and toolObservation do the per-line work); where
// upstream reads only a window (over its scan or line limit) it answers null and upstream's parse runs.
import { readFileSync } from "node:fs";
import { type CallExpression, type FunctionDeclaration, Node, SyntaxKind } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { topLevelFunction, topLevelNames } from "./lib/ast.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { findOne, frame, functionAnchor } from "./lib/find.ts";

const ID = "task-progress-appends";
const TASK_PROGRESS = "server/lib/task-progress.js";
/** Our runtime module in the generated tree (source: patches/runtime/task-progress-appends.js). */
export const RUNTIME_FILE = "server/patch-runtime/task-progress-appends.js";
const runtimeSource = readFileSync(new URL("./runtime/task-progress-appends.js", import.meta.url), "utf8");
const STATE = "taskProgressAppends";
/** What the runtime takes from upstream's module: its per-line functions and its limits. */
const FUNCTIONS = ["observationsFromEntry", "toolObservation"];
const LIMITS = { maxScanBytes: "MAX_SCAN_BYTES", maxLineBytes: "MAX_LINE_BYTES", maxEntries: "MAX_CACHE_ENTRIES" };
/** Upstream's line handler, which the runtime repeats: each call it must still make. */
const HANDLER_CALLS = ["JSON.parse", "observationsFromEntry", "pendingCalls.get", "toolObservation", "pendingCalls.delete", "pendingCalls.set"];

type AnyFile = PatchFile | VerifyFile;

function fail(file: AnyFile, expected: string, found: number, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, found, detail);
}

function callees(node: Node): string[] {
  return node.getDescendantsOfKind(SyntaxKind.CallExpression).map((c) => c.getExpression().getText().replace(/\s+/g, ""));
}

/** `const appended = taskProgressAppends.parse(filePath, owner); if (appended) return appended;` as parseTranscript's first statements. */
function asksRuntimeFirst(fn: FunctionDeclaration): boolean {
  const [first, second] = fn.getBody()?.asKind(SyntaxKind.Block)?.getStatements() ?? [];
  const decl = first?.asKind(SyntaxKind.VariableStatement)?.getDeclarations()[0];
  const init = decl?.getInitializer();
  if (!decl || !init || !Node.isCallExpression(init) || init.getExpression().getText() !== `${STATE}.parse`) return false;
  const params = fn.getParameters().map((p) => p.getName());
  if (init.getArguments().map((a) => a.getText()).join(",") !== params.slice(0, 2).join(",")) return false;
  const ret = second?.asKind(SyntaxKind.IfStatement);
  return !!ret && ret.getExpression().getText() === decl.getName() && /^(\{\s*)?return\s+(\w+);?(\s*\})?$/.test(ret.getThenStatement().getText()) && ret.getThenStatement().getText().includes(decl.getName());
}

/** The module-level `const taskProgressAppends = require("../patch-runtime/task-progress-appends")…`. */
function runtimeRequired(file: AnyFile): boolean {
  return file.ast.getVariableDeclarations().some((d) => d.getName() === STATE && /require\(\s*["']\.\.\/patch-runtime\/task-progress-appends["']\s*\)/.test(d.getInitializer()?.getText() ?? ""));
}

function apply(file: PatchFile): void {
  const parse = findOne(ID, file, functionAnchor("parseTranscript"));
  const params = parse.getParameters().map((p) => p.getName());
  if (params.length !== 2) fail(file, "function parseTranscript(filePath, owner)", 1, finding`${frame(parse)} takes ${params.length} parameter(s); the runtime is called with (file, owner).`);
  const calls = callees(parse);
  const missing = HANDLER_CALLS.filter((c) => !calls.includes(c));
  if (missing.length > 0) {
    fail(file, `parseTranscript's line handler calling ${HANDLER_CALLS.join(", ")}`, 0,
      finding`${frame(parse)} no longer calls ${missing.join(", ")}: upstream changed how a line becomes observations; runtime/task-progress-appends.js repeats the old handler and must follow.`);
  }
  const top = topLevelNames(file.ast);
  for (const name of [...FUNCTIONS, ...Object.values(LIMITS), "cache"]) {
    if (!top.has(name)) fail(file, `a top-level ${name} in ${TASK_PROGRESS}`, 0, "the runtime is handed upstream's per-line functions and limits by these names.");
  }
  if (top.has(STATE)) fail(file, `no existing top-level ${STATE}`, 1, `${TASK_PROGRESS} already declares ${STATE}; rename ours.`);
  const clear = findOne(ID, file, functionAnchor("clearTaskProgressCache"));
  const cleared = clear.getDescendantsOfKind(SyntaxKind.ExpressionStatement).find((s) => s.getText().replace(/\s+/g, "") === "cache.clear();");
  if (!cleared) fail(file, "clearTaskProgressCache() { cache.clear(); }", 0, finding`${frame(clear)}: upstream's cache is cleared another way; ours must be cleared with it.`);

  const m = marker(ID);
  const limits = Object.entries(LIMITS).map(([k, v]) => `${k}: ${v}`).join(", ");
  file.edit.appendLeft(parse.getStart(true),
    `${m}\n// A growing transcript is parsed from its last complete line on, not whole again (see ${RUNTIME_FILE}).\n` +
      `const ${STATE} = require("../patch-runtime/task-progress-appends").createTaskProgressAppends({ ${FUNCTIONS.join(", ")}, ${limits} });\n\n`);
  const body = parse.getBody()!.asKindOrThrow(SyntaxKind.Block);
  file.edit.appendLeft(body.getStart() + 1, `\n  ${m} const appended = ${STATE}.parse(${params[0]}, ${params[1]});\n  if (appended) return appended;`);
  file.edit.appendLeft(cleared.getEnd(), ` ${m} ${STATE}.clear();`);
}

function verify(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  const parse = topLevelFunction(file.ast, "parseTranscript");
  if (!parse) return ["no function parseTranscript(): the task-progress parser moved"];
  if (!runtimeRequired(file)) problems.push(`no module-level ${STATE} = require("../patch-runtime/task-progress-appends")`);
  if (!asksRuntimeFirst(parse)) problems.push(finding`${frame(parse)}: does not ask ${STATE}.parse(…) first; every reload parses each growing transcript whole`);
  const clear = topLevelFunction(file.ast, "clearTaskProgressCache");
  if (clear && !callees(clear).includes(`${STATE}.clear`)) problems.push(finding`${frame(clear)}: clears upstream's cache but not ${STATE}'s`);
  return problems;
}

/**
 * Over the tree: every function that turns transcript lines into task observations (it calls
 * observationsFromEntry on JSON.parse'd lines) is a parseTranscript that asks the runtime first.
 */
function treeProblems(tree: TreeView): { problems: string[]; parsers: number } {
  const problems: string[] = [];
  let parsers = 0;
  for (const path of tree.jsFiles) {
    if (tree.isAdded(path) || /(^|\/)__tests__\//.test(path)) continue;
    if (!tree.text(path).includes("observationsFromEntry(")) continue;
    const file = tree.file(path);
    const fns = file.ast.getDescendantsOfKind(SyntaxKind.CallExpression)
      .filter((c: CallExpression) => c.getExpression().getText() === "observationsFromEntry")
      .map((c) => c.getFirstAncestor((a) => Node.isFunctionDeclaration(a) && a.getParent() === file.ast) as FunctionDeclaration | undefined);
    for (const fn of new Set(fns)) {
      if (!fn || fn.getName() === "observationsFromEntry") continue;
      if (!callees(fn).includes("JSON.parse")) continue; // works on entries handed in, reads no file
      parsers++;
      if (fn.getName() !== "parseTranscript" || !asksRuntimeFirst(fn) || !runtimeRequired(file)) {
        problems.push(`${path}:${fn.getStartLineNumber()} ${fn.getName() ?? "a function"}() parses transcript lines into task progress without ${STATE}: a growing transcript is parsed whole on every reload`);
      }
    }
  }
  return { problems, parsers };
}

export default definePatch({
  id: ID,
  description: "Task progress of a growing transcript is parsed from its new lines only (kept per file and owner), not whole on every page reload.",
  why:
    "The Sessions and Dashboard pages ask for include_task_progress on every reload, and upstream's cache misses whenever a transcript grew, " +
    "which a live agent's does on every hook: each reload JSON-parsed every active session's whole transcript (several MB each) on the event " +
    "loop. With 22 agents and both pages open that was 2.7 s of a 37 s server profile, in chunks of tens of ms that the hooks waited behind (issue #13).",
  removeWhen: "Upstream parses transcripts incrementally (or caches task progress by transcript offset).",
  targets: [],
  optionalTargets: [TASK_PROGRESS],
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply,
  verify,
  verifyTree: (tree) => treeProblems(tree).problems,
  reportTree(tree) {
    const { parsers } = treeProblems(tree);
    return [`${parsers} transcript parser(s) of task progress found; each parses appended lines only`];
  },
});
