// POST /api/hooks/event checks the shape it relies on before anything is read or enqueued: a bad
// request gets 400 with upstream's error shape and a message naming the field, never a 500 and
// never a row; a malformed sent_at_ms is dropped (the event is kept, unstamped) and counted. The
// check itself is our module server/patch-runtime/validate-hook-input.js (source:
// patches/runtime/validate-hook-input.js); it counts through the write queue's stats.
import { readFileSync } from "node:fs";
import { type Block, type IfStatement, Node } from "ts-morph";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { isFnLike, indentOf, topLevelNames } from "./lib/ast.ts";
import { type Finding, finding, isFinding, PatchTargetError } from "./lib/errors.ts";
import { at, callAnchor, findAll, findOne, frame } from "./lib/find.ts";

const ID = "validate-hook-input";
const HOOKS = "server/routes/hooks.js";
const RUNTIME_FILE = "server/patch-runtime/validate-hook-input.js";
const runtimeSource = readFileSync(new URL("./runtime/validate-hook-input.js", import.meta.url), "utf8");
const CHECK = "hookInput";

const DECLARATION = `${marker(ID)}
// POST /event checks its body before anything is read or enqueued: a malformed request is answered
// 400 naming the field (never 500, never stored); a malformed sent_at_ms is dropped and counted
// (ignoredStamps in GET /api/hooks/write-queue/stats). See server/patch-runtime/validate-hook-input.js.
const ${CHECK} = require("../patch-runtime/validate-hook-input").createHookInputCheck({ count: writeQueue.count });

`;

type AnyFile = PatchFile | VerifyFile;

/** The inline (req, res) => { … } handler of router.post("/event", …), or a reason it is not there. */
function eventHandler(file: AnyFile) {
  const calls = findAll(file, callAnchor("router.post", "/event"));
  if (calls.length !== 1) return `expected 1 router.post("/event", …), found ${calls.length}`;
  const handler = calls[0].getArguments().at(-1);
  if (!isFnLike(handler) || !Node.isBlock(handler.getBody())) return finding`router.post("/event", …) does not end with an inline (req, res) => { … } handler (${frame(calls[0])})`;
  const params = handler.getParameters().map((p) => p.getName());
  if (params.length < 2) return finding`the /event handler takes (${params.join(", ")}); expected (req, res) (${frame(handler)})`;
  const routeStatement = calls[0].getFirstAncestor((a) => a.getParent() === file.ast);
  return { call: calls[0], routeStatement, body: handler.getBody() as Block, req: params[0], res: params[1] };
}

/** `if (hookInput.rejected(req, res)) return;` */
function isDoor(st: Node | undefined, req: string, res: string): st is IfStatement {
  if (!st || !Node.isIfStatement(st)) return false;
  const cond = st.getExpression();
  return (
    Node.isCallExpression(cond) &&
    cond.getExpression().getText() === `${CHECK}.rejected` &&
    cond.getArguments().map((a) => a.getText()).join(",") === `${req},${res}` &&
    /^return\s*;?$/.test(st.getThenStatement().getText())
  );
}

export default definePatch({
  id: ID,
  description: "POST /api/hooks/event checks hook_type, data and the fields it reads first: 400 naming the field, never 500 or a stored row; a malformed sent_at_ms is ignored and counted.",
  why:
    "Upstream trusts the body's shape: a numeric hook_type was stored as an event type; an object hook_type or session_id, or a tool_input " +
    "nested thousands of levels deep, answered 500 (a client cannot tell a bad request from a broken server); a negative, enormous or " +
    "non-numeric sent_at_ms was believed, and an enormous one on a SessionEnd made that session final for good.",
  removeWhen: "Upstream validates the hook request body (types, sizes, nesting, send time) before processing it.",
  needs: ["write-queue"],
  targets: [HOOKS],
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply(file) {
    findOne(ID, file, callAnchor("router.post", "/event")); // exactly one, or the standard error with the nearest candidate
    const route = eventHandler(file);
    if (isFinding(route)) throw new PatchTargetError(ID, file.path, 'router.post("/event", (req, res) => { … })', 0, finding`${route}.`);
    const names = topLevelNames(file.ast);
    if (!names.has("writeQueue")) {
      throw new PatchTargetError(ID, file.path, "const writeQueue = createWriteQueue({…}) (from write-queue)", 0, "validate-hook-input counts through the write queue's stats; apply write-queue first (is it registered before validate-hook-input in patches/index.ts?).");
    }
    if (names.has(CHECK)) throw new PatchTargetError(ID, file.path, `no existing top-level ${CHECK}`, 1, "Upstream added its own? Rename ours.");
    const { routeStatement, body, req, res } = route;
    if (!routeStatement) throw new PatchTargetError(ID, file.path, 'router.post("/event", …) as a top-level statement', 0, finding`Found ${frame(route.call)}.`);
    const first = body.getStatements()[0];
    if (!first) throw new PatchTargetError(ID, file.path, "a non-empty /event handler", 0, finding`Found ${frame(route.call)}.`);
    file.edit.appendLeft(routeStatement.getStart(), DECLARATION);
    file.edit.appendLeft(
      first.getStart(),
      `${marker(ID)} if (${CHECK}.rejected(${req}, ${res})) return; // 400 naming the field, before anything is read or enqueued\n${indentOf(file.text, first)}`,
    );
  },
  verify(file) {
    const problems: Finding[] = [];
    const decl = file.ast.getVariableDeclaration(CHECK);
    const init = decl?.getInitializer()?.getText() ?? "";
    if (!decl || !/createHookInputCheck\(/.test(init)) problems.push(`no module-level const ${CHECK} = require("../patch-runtime/validate-hook-input").createHookInputCheck(…)`);
    else if (!/count:\s*writeQueue\.count/.test(init)) problems.push(`${CHECK} does not count through writeQueue.count: ignored stamps would not show in the write-queue stats`);
    const route = eventHandler(file);
    if (isFinding(route)) return [...problems, route];
    const statements = route.body.getStatements();
    if (!isDoor(statements[0], route.req, route.res)) {
      const door = statements.find((st) => isDoor(st, route.req, route.res));
      problems.push(
        door
          ? finding`POST /event works before it checks its body: the check is at ${at(door)}, after ${frame(statements[0])}`
          : finding`POST /event does not start with if (${CHECK}.rejected(${route.req}, ${route.res})) return; (${frame(route.call)})`,
      );
    }
    return problems;
  },
  report(file) {
    const route = eventHandler(file);
    return isFinding(route) ? [] : [`${file.path}: POST /event checks its body first (line ${route.body.getStatements()[0].getStartLineNumber()}): 400 naming the field; malformed sent_at_ms dropped and counted`];
  },
});
