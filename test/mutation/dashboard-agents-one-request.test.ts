// Mutation test of dashboard-agents-one-request's Dashboard gate: a reload that asks for a list on
// every reload (a list upstream adds to the Promise.all later, or the working and waiting agents one
// request each again) fails the gate, naming file and line; the patched fixture Dashboard passes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import patch from "../../patches/dashboard-agents-one-request.ts";
import { memoryTreeView } from "../../scripts/pipeline/patch.ts";

const DASHBOARD = "client/src/pages/Dashboard.tsx";
const patched = readFileSync(new URL("../fixtures/patches/dashboard-agents-one-request/dashboard.output.tsx", import.meta.url), "utf8").replace(/^\/\/ target: .*\n/, "");
const slowSessions = /\/\* \[patch:dashboard-agents-one-request\] \*\/ slowly\(show, "api\.sessions\.list#\d+", \(\) => (api\.sessions\.list\([^)]*\))\)/;

describe("dashboard-agents-one-request gate over the client", () => {
  it("holds on the patched fixture Dashboard", () => {
    expect(patched).toMatch(slowSessions);
    expect(patch.verifyTree!(memoryTreeView({ [DASHBOARD]: patched }))).toEqual([]);
  });

  it("fails when a list of the reload is asked for on every reload", () => {
    const mutated = patched.replace(slowSessions, "$1");
    const line = mutated.split("\n").findIndex((l) => l.trim().startsWith("api.sessions.list(")) + 1;
    expect(patch.verifyTree!(memoryTreeView({ [DASHBOARD]: mutated }))).toEqual([`${DASHBOARD}:${line} the reload asks for api.sessions.list on every reload (not through slowly)`]);
  });

  it("fails when the working and waiting agents are one request each again", () => {
    const mutated = patched.replace(/\/\* \[patch:dashboard-agents-one-request\] \*\/ \.\.\.byStatus\(.*\),\n/, 'api.agents.list({ status: "working", limit: 20 }),\n      api.agents.list({ status: "waiting", limit: 20 }),\n');
    const problems = patch.verifyTree!(memoryTreeView({ [DASHBOARD]: mutated }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${DASHBOARD}:\\d+ the reload asks for the working and waiting agents one request each$`));
  });
});
