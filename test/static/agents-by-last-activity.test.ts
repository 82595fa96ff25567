// Static check of agents-by-last-activity on trees this test builds itself (the fixture, and the real upstream
// when AGENT_MONITOR_UPSTREAM is set): db.js makes the side table before its statements, the LIMITed agent
// lists (listAgents, listAgentsByStatus, the route's clause branch) walk it, the unLIMITed per-session list is
// left as upstream wrote it, the whole-tree gate holds; and the gate's own cases: what it must reject and pass.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import patch from "../../patches/agents-by-last-activity.ts";
import { renderFinding } from "../../patches/lib/errors.ts";
import { treeView, verifyView } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const DB = "server/db.js";
const ROUTE = "server/routes/agents.js";
const WALK = "FROM agent_last_activity l CROSS JOIN agents a ON a.id = l.agent_id";

if (!realUpstream) console.info(`[agents-by-last-activity static] ${SKIP_REAL}`);

describe.each(trees())("agents-by-last-activity in the generated %s tree", (label, buildTree) => {
  it("the side table is made before the statements; the LIMITed agent lists walk it; the gate holds", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === patch.id).map((r) => [r.file, r.action])).toEqual([[DB, "applied"], [ROUTE, "applied"], ["server/patch-runtime/agent-last-activity.js", "applied"]]);
    const db = readFileSync(path.join(outcome.outDir, DB), "utf8");
    const ensure = db.indexOf("ensureAgentLastActivity(db);");
    expect(ensure).toBeGreaterThan(0);
    expect(ensure).toBeLessThan(db.indexOf("const stmts = {"));
    expect(db.split(WALK)).toHaveLength(3); // listAgents and listAgentsByStatus
    // upstream's per-session list has no LIMIT (a session's agents): left as it is (the fixture's orders by started_at)
    if (label !== "fixture") expect(db).toMatch(/listAgentsBySession: db\.prepare\(\s*`SELECT a\.\*, \$\{AGENT_LAST_ACTIVITY_SQL\} AS last_activity/);
    const route = readFileSync(path.join(outcome.outDir, ROUTE), "utf8");
    expect(route).toContain(`${WALK} WHERE \${clauses.join(" AND ")}`);
    expect(patch.verify(verifyView(DB, db))).toEqual([]);
    expect(patch.verifyTree!(treeView(outcome.outDir))).toEqual([]);
  });
});

describe("agents-by-last-activity gate: its cases", () => {
  const DEF = "const ACT = `COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.ended_at, a.started_at)`;\n";
  const gate = (text: string) => patch.verify(verifyView("server/routes/x.js", text)).map((p) => renderFinding(p)).filter((p) => !p.startsWith("no agent list"));
  it.each([
    ["through a const, ORDER BY its alias", `${DEF}db.prepare(\`SELECT a.*, \${ACT} AS last_activity FROM agents a ORDER BY last_activity DESC LIMIT ?\`);`],
    ["inline, ORDER BY the expression", "db.prepare(`SELECT a.id FROM agents a ORDER BY (SELECT MAX(ev.created_at) FROM events ev WHERE ev.agent_id = a.id) DESC LIMIT 10`);"],
    ["a plain string, another alias", `db.prepare("SELECT a.*, COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.started_at) AS seen FROM agents a WHERE a.type = 'subagent' ORDER BY seen DESC LIMIT ? OFFSET ?");`],
  ])("rejects an agent list with LIMIT ordered by the computed last activity: %s", (_name, text) => {
    expect(gate(text)).toEqual([expect.stringMatching(/^line \d+ an agent list with LIMIT orders by the computed last activity/)]);
  });
  it.each([
    ["no LIMIT (one session's agents)", `${DEF}db.prepare(\`SELECT a.*, \${ACT} AS last_activity FROM agents a WHERE a.session_id = ? ORDER BY last_activity DESC\`);`],
    ["computed but ordered by another column", `${DEF}db.prepare(\`SELECT a.*, \${ACT} AS last_activity FROM agents a ORDER BY a.started_at DESC LIMIT ?\`);`],
    ["the side table's walk", `db.prepare(\`SELECT a.*, COALESCE(l.event_max, l.fallback) AS last_activity ${WALK} ORDER BY last_activity DESC LIMIT ?\`);`],
  ])("passes %s", (_name, text) => {
    expect(gate(text)).toEqual([]);
  });
});
