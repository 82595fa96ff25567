// Mutation test of list-events-by-recency's whole-tree gate: upstream adds a second feed of the newest
// events under the data scope, its WHERE built on bare session_id (the shape the patch rewrote in
// events.js). The patch still applies to events.js; the gate names the new listing, file:line.
import { describe, expect, it } from "vitest";
import { buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";

const ACTIVITY =
  'const { Router } = require("express");\n' +
  'const { db } = require("../db");\n' +
  'const { parseProviders, sessionIdInProvidersClause } = require("../lib/provider-filter");\n\n' +
  "const router = Router();\n\n" +
  "function scopeWhere(providers) {\n" +
  '  const scope = sessionIdInProvidersClause(providers, "session_id");\n' +
  '  return { sql: scope.clause ? `WHERE ${scope.clause}` : "", params: scope.params };\n' +
  "}\n\n" +
  'router.get("/", (req, res) => {\n' +
  "  const { sql: where, params } = scopeWhere(parseProviders(req));\n" +
  "  const rows = db.prepare(`SELECT * FROM events ${where} ORDER BY created_at DESC LIMIT ?`).all(...params, 20);\n" +
  "  res.json({ events: rows });\n" +
  "});\n\n" +
  "module.exports = router;\n";

describe("list-events-by-recency mutation: another newest-first events feed under the data scope", () => {
  it("fails the gate naming the patch and the listing, file:line (targets alone would have shipped it)", async () => {
    const dir = mutateFixture("scoped-feed", { "server/routes/activity.js": ACTIVITY });
    expect((await buildMutant(dir, { patches: targetsOnly })).problems).toBeNull();
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(
      /^\[list-events-by-recency\] whole tree: server\/routes\/activity\.js:14 events listed newest first with a data-scope clause on session_id \(scopeWhere\(…\) without scopeColumn "\+session_id"\): SQLite reads and sorts every event in scope$/m,
    );
  });
});
