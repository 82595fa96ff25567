import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Pin } from "../../scripts/lib/pin.ts";
import { readPin } from "../../scripts/lib/pin.ts";
import { fetchUpstream } from "../../scripts/pipeline/fetch.ts";
import { gitCommitAll, makeToyUpstream } from "../support/toy.ts";

function toyPin(commit: string): Pin {
  return { repository: "https://example.invalid/toy.git", tag: "v1.0.0", commit, releases: { "v1.0.0": commit } };
}
const tmpCache = () => mkdtempSync(path.join(os.tmpdir(), "fetch-cache-"));

describe("fetch", () => {
  it("the committed pin is a full SHA that matches its release tag", () => {
    const pin = readPin();
    expect(pin.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(pin.releases[pin.tag]).toBe(pin.commit);
    expect(pin.repository).toBe("https://github.com/hoangsonww/Claude-Code-Agent-Monitor.git");
  });

  it("checks out exactly the pinned commit from a local clone, then serves it from the cache", () => {
    const repo = makeToyUpstream();
    const sha = gitCommitAll(repo, "v1.0.0");
    const cacheDir = tmpCache();
    const first = fetchUpstream({ source: repo, pin: toyPin(sha), cacheDir });
    expect(first).toMatchObject({ kind: "git", commit: sha, tag: "v1.0.0", cached: false });
    expect(readFileSync(path.join(first.dir, "server/db.js"), "utf8")).toContain("journal_mode = WAL");
    expect(existsSync(path.join(first.dir, ".git"))).toBe(false);
    // The source may now vanish: the cache answers without it.
    const second = fetchUpstream({ source: path.join(repo, "does-not-exist-anymore"), pin: toyPin(sha), cacheDir });
    expect(second).toMatchObject({ commit: sha, cached: true, dir: first.dir });
  });

  it("reads a bare mirror, resolves a listed tag, and refuses a tag that moved", () => {
    const repo = makeToyUpstream();
    const sha = gitCommitAll(repo, "v1.0.0");
    const bare = path.join(mkdtempSync(path.join(os.tmpdir(), "bare-")), "m.git");
    execFileSync("git", ["clone", "-q", "--mirror", repo, bare]);
    const got = fetchUpstream({ source: bare, ref: "v1.0.0", pin: toyPin(sha), cacheDir: tmpCache() });
    expect(got.commit).toBe(sha);
    const wrong = "0".repeat(40);
    expect(() => fetchUpstream({ source: bare, ref: "v1.0.0", pin: { ...toyPin(sha), releases: { "v1.0.0": wrong } }, cacheDir: tmpCache() })).toThrow(
      `v1.0.0 in ${bare} is ${sha}, but upstream.pin.json says ${wrong}; the tag moved upstream, re-pin deliberately`,
    );
  });

  it("refuses a branch unless asked", () => {
    const repo = makeToyUpstream();
    const sha = gitCommitAll(repo);
    expect(() => fetchUpstream({ source: repo, ref: "main", pin: toyPin("1".repeat(40)), cacheDir: tmpCache() })).toThrow(/--ref main is a branch, which pins nothing.*--allow-branch/);
    const ok = fetchUpstream({ source: repo, ref: "main", allowBranch: true, pin: toyPin("1".repeat(40)), cacheDir: tmpCache() });
    expect(ok.commit).toBe(sha);
  });

  it("names a commit the source lacks", () => {
    const repo = makeToyUpstream();
    gitCommitAll(repo);
    const missing = "2".repeat(40);
    expect(() => fetchUpstream({ source: repo, pin: toyPin(missing), cacheDir: tmpCache() })).toThrow(`has neither tag v1.0.0 nor its commit ${missing}`);
    expect(() => fetchUpstream({ source: repo, ref: missing, pin: toyPin("6".repeat(40)), cacheDir: tmpCache() })).toThrow(`does not contain commit ${missing}`);
  });

  it("a folder inside some other git checkout (like test/fixtures/upstream) is a plain directory", () => {
    const repo = makeToyUpstream();
    gitCommitAll(repo);
    const inner = path.join(repo, "server");
    expect(fetchUpstream({ source: inner, pin: toyPin("7".repeat(40)), cacheDir: tmpCache() })).toMatchObject({ kind: "directory", commit: null, dir: inner });
  });

  it("takes a plain directory as is (no commit), and rejects --ref for it", () => {
    const dir = makeToyUpstream();
    expect(fetchUpstream({ source: dir, pin: toyPin("3".repeat(40)), cacheDir: tmpCache() })).toMatchObject({ kind: "directory", commit: null, dir });
    expect(() => fetchUpstream({ source: dir, ref: "v1.0.0", pin: toyPin("3".repeat(40)), cacheDir: tmpCache() })).toThrow("needs a git source");
  });

  it("an unreachable URL is one line that says how to use a local mirror", () => {
    let msg = "";
    try {
      fetchUpstream({ source: "https://agent-monitor.invalid/x.git", pin: toyPin("4".repeat(40)), cacheDir: tmpCache() });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^cannot reach upstream https:\/\/agent-monitor\.invalid\/x\.git; work offline from a local clone or mirror: --upstream \/path\/to\/mirror \(or AGENT_MONITOR_UPSTREAM=/);
    expect(msg.split("\n")).toHaveLength(1);
  });

  it("a source that does not exist is a clear error", () => {
    expect(() => fetchUpstream({ source: "/definitely/not/here", pin: toyPin("5".repeat(40)), cacheDir: tmpCache() })).toThrow(
      "upstream source /definitely/not/here is not a directory, clone, mirror or URL",
    );
  });
});
