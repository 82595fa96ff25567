// Every page of the client that reloads from a WebSocket frame goes through one coalescer
// (client/src/lib/coalesce.ts, source: patches/runtime/client/coalesce.ts): one request in flight per
// list, at most one per ~1 s while frames keep coming, always one trailing reload after the last frame.
import { readFileSync } from "node:fs";
import { Node, SyntaxKind, type CallExpression, type SourceFile } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { at, callAnchor, findAll, findOne } from "./lib/find.ts";
import { type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { perParse } from "./lib/memo.ts";
import { afterImports, hasNamedImport, importSpecifier, localDeclaration } from "./lib/ast.ts";

const ID = "coalesce-page-reloads";
const M = marker(ID);
export const COALESCE_FILE = "client/src/lib/coalesce.ts";
const coalesceSource = readFileSync(new URL("./runtime/client/coalesce.ts", import.meta.url), "utf8");
const SUBSCRIBE = callAnchor("eventBus.subscribe");
/** A name that reads as a loader even when its declaration is not in the file (a prop, a hook's result). */
const LOADER_NAME = /^(re)?(load|fetch|refresh)\w*$/i;
/** A declaration whose body talks to the server. */
const TALKS_TO_SERVER = /\bapi\.[\w.]+\(|\bfetch\(/;

/**
 * Subscribers reviewed and left direct, each with why it is cheap: `<file>#<callee>`.
 * Only frames that hook events never send (run_status, update checks, remote-source syncs) reach them.
 */
export const REVIEWED_DIRECT: Record<string, string> = {
  "client/src/hooks/useNotifications.ts#notify":
    "not a reload: one browser push notification per notable event (session end, agent error), sent only when the user granted notifications; coalescing would drop notifications",
};

type AnyFile = PatchFile | VerifyFile;

/** Names of functions in the file that call the server (const x = useCallback(async () => api…), function x() {…}). */
function loadersOf(ast: SourceFile): Set<string> {
  const names = new Set<string>();
  for (const d of ast.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) {
    const init = d.getInitializer();
    if (init && Node.isIdentifier(d.getNameNode()) && TALKS_TO_SERVER.test(init.getText()) && /=>|function/.test(init.getText().slice(0, 200))) names.add(d.getName());
  }
  for (const f of ast.getDescendantsOfKind(SyntaxKind.FunctionDeclaration)) {
    const name = f.getName();
    if (name && TALKS_TO_SERVER.test(f.getText())) names.add(name);
  }
  return names;
}

/** The callback body of a subscribe call: an inline function, or a local `const handler = …` it names. */
function callbackOf(call: CallExpression): Node | null {
  const arg = call.getArguments()[0];
  if (!arg) return null;
  if (Node.isArrowFunction(arg) || Node.isFunctionExpression(arg)) return arg;
  if (Node.isIdentifier(arg)) {
    const decl = arg.getSymbol()?.getDeclarations()[0] ?? localDeclaration(call.getSourceFile(), arg.getText());
    if (decl && Node.isVariableDeclaration(decl)) return decl.getInitializer() ?? null;
    if (decl && Node.isFunctionDeclaration(decl)) return decl;
  }
  return null;
}

const insideCoalesced = (n: Node): boolean => !!n.getFirstAncestor((a) => Node.isCallExpression(a) && a.getExpression().getText() === "coalesced");

interface Direct {
  /** The node to replace, its callee name and the replacement text. */
  node: Node;
  callee: string;
  replacement: string | null;
}

/** Direct (uncoalesced) server calls in the file's eventBus subscribers. */
function directCalls(file: AnyFile): Direct[] {
  if (!file.text.includes("subscribe")) return []; // not parsed at all (the gate walks every client file)
  return directCallsOfParse(file);
}

// apply, verify, discover and the gate ask for the same text several times per ref.
const directCallsOfParse = perParse(findDirectCalls);

function findDirectCalls(file: AnyFile): Direct[] {
  const subs = findAll(file, SUBSCRIBE);
  if (subs.length === 0) return []; // most client files: no need to collect their loaders (the gate walks them all)
  const loaders = loadersOf(file.ast);
  const isLoader = (name: string) => loaders.has(name) || LOADER_NAME.test(name);
  const key = (name: string) => JSON.stringify(`${file.path}#${name}`);
  const out: Direct[] = [];
  for (const sub of subs) {
    const cb = callbackOf(sub);
    if (!cb) {
      out.push({ node: sub, callee: sub.getArguments()[0]?.getText() ?? "?", replacement: null });
      continue;
    }
    for (const call of cb.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      if (insideCoalesced(call)) continue;
      const callee = call.getExpression();
      const args = call.getArguments();
      // A call whose value is used (const prefs = loadPrefs()) is a read the code needs now, not a reload.
      if (Node.isIdentifier(callee) && isLoader(callee.getText()) && Node.isExpressionStatement(call.getParent())) {
        const name = callee.getText();
        // With arguments only a loader by name is folded (a call like notify(title, body) is an action: each one counts).
        const fn = args.length === 0 ? name : LOADER_NAME.test(name) ? `() => ${call.getText()}` : null;
        out.push({ node: call, callee: name, replacement: fn && `coalesced(${key(name)}, ${fn})` });
      } else if (Node.isIdentifier(callee) && callee.getText() === "setTimeout" && args[0] && Node.isIdentifier(args[0]) && isLoader(args[0].getText())) {
        // A trailing-only debounce (clearTimeout + setTimeout(load, 300)) never fires under a steady
        // stream, nor does a 0 ms timer that the next frame clears (Chromium runs the socket's
        // messages first): hand each frame to the coalescer at once; the timer slot gets an inert
        // timer, so its type and the page's clearTimeout stay as they were.
        const name = args[0].getText();
        out.push({ node: call, callee: name, replacement: `(coalesced(${key(name)}, ${name}), setTimeout(() => undefined, 0))` });
      } else if (/^api(\.\w+)+$/.test(callee.getText().replace(/\s/g, ""))) {
        // An inline api.x.y().then(…) statement: fold the whole statement.
        const name = callee.getText().replace(/\s/g, "");
        let outer: Node = call;
        for (let p = outer.getParent(); p && (Node.isPropertyAccessExpression(p) || (Node.isCallExpression(p) && p.getExpression() === outer)); p = outer.getParent()) outer = p;
        const statement = Node.isExpressionStatement(outer.getParent()) && args.length === 0;
        out.push({ node: outer, callee: name, replacement: statement ? `coalesced(${key(name)}, () => ${outer.getText()})` : null });
      }
    }
  }
  return out;
}

const reviewed = (file: string, d: Direct) => REVIEWED_DIRECT[`${file}#${d.callee}`] !== undefined;

const hasImport = (file: AnyFile) => hasNamedImport(file.text, "coalesced", "lib/coalesce");

function apply(file: PatchFile): void {
  const subs = findAll(file, SUBSCRIBE);
  if (subs.length === 0) findOne(ID, file, SUBSCRIBE); // throws with the nearest candidate
  const todo = directCalls(file).filter((d) => !reviewed(file.path, d));
  const fixable = todo.filter((d) => d.replacement !== null);
  if (fixable.length === 0 && !hasImport(file)) {
    const first = todo[0];
    throw new PatchTargetError(ID, file.path, "call of a loader (load(), setTimeout(load, …)) inside an eventBus.subscribe callback", 0,
      first ? finding`Nearest candidate: ${at(first.node)}: ${first.callee} (not a form the patch rewrites).` : `The subscribers at lines ${subs.map((s) => s.getStartLineNumber()).join(", ")} call no loader. Renamed or removed upstream?`);
  }
  for (const d of fixable) file.edit.overwrite(d.node.getStart(), d.node.getEnd(), d.replacement!);
  if (!hasImport(file)) {
    file.edit.appendLeft(afterImports(file.ast), `\n${M}\nimport { coalesced } from "${importSpecifier(file.path, COALESCE_FILE)}";`);
  }
}

function verify(file: VerifyFile): Finding[] {
  const problems: Finding[] = directCalls(file)
    .filter((d) => !reviewed(file.path, d))
    .map((d) => finding`${at(d.node)}: eventBus subscriber calls ${d.callee} directly (not through coalesced())`);
  if (!hasImport(file)) problems.push(`no import of coalesced from ${COALESCE_FILE}`);
  return problems;
}

const subscriberFiles = (tree: TreeView) => tree.clientFiles.filter((f) => f !== COALESCE_FILE && tree.text(f).includes("eventBus.subscribe("));

/** Every client file with an eventBus subscriber, and its direct server calls. */
function scan(tree: TreeView): { files: string[]; direct: string[]; exceptions: string[] } {
  const files = subscriberFiles(tree);
  const direct: string[] = [];
  const exceptions: string[] = [];
  for (const f of files) {
    const view = tree.file(f);
    for (const d of directCalls(view)) {
      const line = `${f}:${d.node.getStartLineNumber()} eventBus subscriber calls ${d.callee} directly (not through coalesced())`;
      (reviewed(f, d) ? exceptions : direct).push(reviewed(f, d) ? `${line}: reviewed, ${REVIEWED_DIRECT[`${f}#${d.callee}`]}` : line);
    }
  }
  return { files, direct, exceptions };
}

export default definePatch({
  id: ID,
  description: "WebSocket-driven reloads on every client page go through one coalescer: leading call, one in flight, ≤ 1 per ~1 s, always a trailing reload",
  why: "The Sessions page reloads GET /api/sessions on every session_updated frame (every hook event sends one): 15–24 API requests per second per page, each a 70 ms query on the loop that answers hooks; the Dashboard's 300 ms trailing debounce never fires under a steady stream (issue #13).",
  removeWhen: "Upstream coalesces WS-driven reloads itself (PR #222 debounces the sessions list; a trailing-only debounce starves, so check it has a leading call and a max interval).",
  targets: ["client/src/pages/Sessions.tsx", "client/src/pages/Dashboard.tsx", "client/src/pages/SessionDetail.tsx"],
  adds: { [COALESCE_FILE]: coalesceSource },
  // Every other client file whose subscribers reload directly (KanbanBoard, ActivityFeed, Analytics, …).
  discover: (tree) => subscriberFiles(tree).filter((f) => directCalls(tree.file(f)).some((d) => d.replacement !== null && !reviewed(f, d))),
  apply,
  verify,
  verifyTree(tree) {
    const problems = scan(tree).direct;
    if (!tree.clientFiles.includes(COALESCE_FILE)) problems.push(`${COALESCE_FILE}: missing (the coalescer the pages import)`);
    return problems;
  },
  reportTree(tree) {
    const s = scan(tree);
    return [`${tree.clientFiles.length} client files scanned, ${s.files.length} subscribe to eventBus, ${s.direct.length} direct reloads, ${s.exceptions.length} reviewed exceptions`, ...s.exceptions];
  },
});
