// Static check of bound-session-detail on trees this test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): GET /:id validates its page parameters first, reads a
// page instead of stmts.listEventsBySession, answers events_total; the whole-tree gate holds on the
// output; on the real tree the Workflows drill-in is bounded and the task snapshot reads the Task
// events; the patch's verify fails when the full list comes back.
import { readFileSync } from "node:fs";
import path from "node:path";
import { SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import patch from "../../patches/bound-session-detail.ts";
import { callAnchor, findAll } from "../../patches/lib/find.ts";
import { treeView, verifyView } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const ROUTE = "server/routes/sessions.js";
const WORKFLOWS = "server/routes/workflows.js";

if (!realUpstream) console.info(`[bound-session-detail static] ${SKIP_REAL}`);

describe.each(trees())("bound-session-detail in the generated %s tree", (label, buildTree) => {
  it("GET /:id validates first, reads a page and answers its total; the gate holds on the tree; verify fails when the full list is back", async () => {
    const outcome = await buildTree();
    const rows = outcome.results.filter((r) => r.patch === patch.id).map((r) => [r.file, r.action]);
    expect(rows).toEqual([[ROUTE, "applied"], [WORKFLOWS, label === "fixture" ? "absent" : "applied"]]); // the fixture has no Workflows routes
    const text = readFileSync(path.join(outcome.outDir, ROUTE), "utf8");
    const view = verifyView(ROUTE, text);
    const handler = findAll(view, callAnchor("router.get", "/:id"))[0].getArguments().at(-1)!;
    const statements = handler.getFirstDescendantByKindOrThrow(SyntaxKind.Block).getStatements().map((s) => s.getText());
    expect(statements[0]).toBe("const eventsQuery = sessionEventsQuery(req.query);");
    expect(statements[1]).toBe("if (eventsQuery.error) return badEventsPage(res, eventsQuery.error);");
    expect(handler.getText()).not.toContain("listEventsBySession");
    expect(statements.at(-1)).toMatch(/^res\.json\(\{ session, agents, events, .*events_total: eventsPage\.total, events_limit: eventsPage\.limit, events_next_before: eventsPage\.nextBefore \}\);$/);
    if (label !== "fixture") expect(handler.getText()).toContain("taskProgressForSession(session, agents, /* [patch:bound-session-detail] */ taskEventsForSession(req.params.id))");
    expect(patch.verify(view)).toEqual([]);
    expect(patch.verifyTree!(treeView(outcome.outDir))).toEqual([]);

    // mutation: the handler reads the full list again
    const back = text.replace("const events = eventsPage.events;", "const events = stmts.listEventsBySession.all(req.params.id);");
    expect(back).not.toBe(text);
    expect(patch.verify(verifyView(ROUTE, back)).join("\n")).toMatch(/GET \/:id still reads every event: line \d+: stmts\.listEventsBySession\.all\(req\.params\.id\)/);
  });
});
