// hashFilesByStat: the no-op build check reads a file again only when its stat changed (git's index idea).
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hashFiles, hashFilesByStat } from "../../scripts/lib/hash.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>, ageSeconds: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hash-by-stat-"));
  dirs.push(dir);
  const when = new Date(Date.now() - ageSeconds * 1000);
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(path.join(dir, f), text);
    utimesSync(path.join(dir, f), when, when);
  }
  return dir;
}

describe("hashFilesByStat", () => {
  it("gives hashFiles' answer, and records it", () => {
    const dir = tree({ "a.js": "one", "b.js": "two" }, 60);
    const cache = path.join(dir, "record.json");
    expect(hashFilesByStat(dir, ["a.js", "b.js"], cache)).toEqual(hashFiles(dir, ["a.js", "b.js"]));
    expect(Object.keys(JSON.parse(readFileSync(cache, "utf8")).files)).toEqual(["a.js", "b.js"]);
  });

  it("reads a file again when its size or mtime changed", () => {
    const dir = tree({ "a.js": "one" }, 60);
    const cache = path.join(dir, "record.json");
    hashFilesByStat(dir, ["a.js"], cache);
    writeFileSync(path.join(dir, "a.js"), "one, edited");
    expect(hashFilesByStat(dir, ["a.js"], cache)).toEqual(hashFiles(dir, ["a.js"]));
  });

  it("trusts an unchanged stat (the record's hash is used, the file is not read) but not a racily clean one", () => {
    const dir = tree({ "old.js": "aaa", "new.js": "xxx" }, 60);
    const cache = path.join(dir, "record.json");
    const now = new Date();
    utimesSync(path.join(dir, "new.js"), now, now); // changed just before the record: racily clean
    const first = hashFilesByStat(dir, ["old.js", "new.js"], cache);
    // Same size, same mtime, same inode: only the record can tell; it answers the old hash.
    const mtime = statSync(path.join(dir, "old.js")).mtime; // whole ms: tree() set it through a Date
    writeFileSync(path.join(dir, "old.js"), "bbb");
    utimesSync(path.join(dir, "old.js"), mtime, mtime);
    writeFileSync(path.join(dir, "new.js"), "yyy");
    utimesSync(path.join(dir, "new.js"), now, now);
    const second = hashFilesByStat(dir, ["old.js", "new.js"], cache);
    expect(second["old.js"]).toBe(first["old.js"]);
    expect(second["new.js"]).toBe(hashFiles(dir, ["new.js"])["new.js"]);
    expect(second["new.js"]).not.toBe(first["new.js"]);
  });
});
