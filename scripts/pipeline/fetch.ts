// Fetch: get the upstream source at exactly the requested commit, cached by commit.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { UserError } from "../lib/errors.ts";
import { isFullSha, type Pin, shortSha } from "../lib/pin.ts";

export const UPSTREAM_ENV = "AGENT_MONITOR_UPSTREAM";

export interface FetchRequest {
  /** --upstream, else $AGENT_MONITOR_UPSTREAM, else the pin's repository URL. */
  source?: string;
  /** A tag or commit; defaults to the pinned commit. */
  ref?: string;
  /** Accept a branch name (its current commit is not pinned by anything). */
  allowBranch?: boolean;
  pin: Pin;
  cacheDir: string;
}

export interface FetchedUpstream {
  /** A clean tree of the upstream at `commit` (read-only use: it is the cache). */
  dir: string;
  /** Where it came from, as given (a URL, a path). */
  source: string;
  kind: "git" | "directory";
  /** Full SHA; null for a plain directory, which has no commit to verify. */
  commit: string | null;
  /** The release tag, when the ref is one. */
  tag: string | null;
  /** True when the tree came from the local cache without contacting the source. */
  cached: boolean;
}

export function resolveSource(req: Pick<FetchRequest, "source" | "pin">): string {
  return req.source || process.env[UPSTREAM_ENV] || req.pin.repository;
}

/**
 * What kind of source this is: a git URL, a local clone or bare mirror, a plain directory, or
 * nothing that exists (decided from the string and the directory, without starting git).
 */
export type SourceKind = "url" | "git-dir" | "directory" | "missing";

export function sourceKind(source: string): SourceKind {
  if (isUrl(source)) return "url";
  const abs = path.resolve(source);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) return "missing";
  return isGitRepo(abs) ? "git-dir" : "directory";
}

export function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^[^/]+@[^/]+:/.test(s);
}

/**
 * True when `dir` itself is a clone's top level (it has .git) or a bare repository (HEAD, objects/
 * and refs/ at its top), not merely inside one. Read from the directory, not by starting git: the
 * no-op build asks this on every run.
 */
export function isGitRepo(dir: string): boolean {
  const has = (p: string) => existsSync(path.join(dir, p));
  return has(".git") || (has("HEAD") && has("objects") && has("refs"));
}

function git(args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync("git", args, { cwd: opts.cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } }).trim();
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message: string };
  const text = (e.stderr ? e.stderr.toString() : e.message).trim();
  return text.split("\n").filter((l) => l.trim()).pop() ?? text;
}

export function fetchUpstream(req: FetchRequest): FetchedUpstream {
  const source = resolveSource(req);
  // A commit we already exported needs neither the source nor the network.
  const want = expectedCommit(req);
  const kind = sourceKind(source);
  if (kind !== "directory" && want.commit && existsSync(treeDir(req.cacheDir, want.commit))) {
    return { dir: treeDir(req.cacheDir, want.commit), source, kind: "git", commit: want.commit, tag: want.tag, cached: true };
  }
  if (kind === "missing") {
    throw new UserError(`upstream source ${source} is not a directory, clone, mirror or URL; pass --upstream <path-or-url> or set ${UPSTREAM_ENV}`);
  }
  if (kind === "directory") return fromDirectory(path.resolve(source), source, req);
  if (kind === "git-dir") return fromGit(path.resolve(source), source, req);
  return fromGit(source, source, req);
}

function fromDirectory(abs: string, source: string, req: FetchRequest): FetchedUpstream {
  if (req.ref) throw new UserError(`--ref ${req.ref} needs a git source, but ${source} is a plain directory; drop --ref or point --upstream at a clone`);
  return { dir: abs, source, kind: "directory", commit: null, tag: null, cached: false };
}

/** Turn --ref (or the pin) into the commit we must end up with, before touching the network. */
function expectedCommit(req: FetchRequest): { commit: string | null; tag: string | null; ref: string } {
  const ref = req.ref ?? req.pin.commit;
  if (isFullSha(ref)) {
    const tag = Object.entries(req.pin.releases).find(([, sha]) => sha === ref)?.[0] ?? null;
    return { commit: ref, tag, ref };
  }
  if (req.pin.releases[ref]) return { commit: req.pin.releases[ref], tag: ref, ref };
  return { commit: null, tag: null, ref };
}

function fromGit(location: string, source: string, req: FetchRequest): FetchedUpstream {
  const want = expectedCommit(req);
  const local = !isUrl(location);
  // A local clone or mirror is read in place (rev-parse + archive): no copy of its history, and
  // no pack-objects run, which a mirror with absent large blobs cannot serve. A URL is fetched
  // into a bare cache repository first.
  const repo = local ? location : path.join(req.cacheDir, "upstream.git");
  const commit = local ? resolveLocal(repo, source, want, req.allowBranch ?? false) : fetchInto(repo, location, source, want, req.allowBranch ?? false);
  if (want.commit && commit !== want.commit) {
    throw new UserError(`${want.ref} in ${source} is ${commit}, but upstream.pin.json says ${want.commit}; the tag moved upstream, re-pin deliberately`);
  }
  const dir = exportTree(repo, req.cacheDir, commit);
  return { dir, source, kind: "git", commit, tag: want.tag, cached: false };
}

function revParse(repo: string, rev: string): string | null {
  const r = spawnSync("git", ["-C", repo, "rev-parse", "--verify", "--quiet", `${rev}^{commit}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function resolveLocal(repo: string, source: string, want: { commit: string | null; tag: string | null; ref: string }, allowBranch: boolean): string {
  if (want.tag) {
    const sha = revParse(repo, `refs/tags/${want.tag}`) ?? (want.commit ? revParse(repo, want.commit) : null);
    if (!sha) throw new UserError(`${source} has neither tag ${want.tag} nor its commit ${want.commit}; update the mirror (git fetch --tags) or pick another --ref`);
    return sha;
  }
  if (want.commit) {
    const sha = revParse(repo, want.commit);
    if (!sha) throw new UserError(`${source} does not contain commit ${want.commit}; update the mirror (git fetch) or pass --ref`);
    return sha;
  }
  const tag = revParse(repo, `refs/tags/${want.ref}`);
  if (tag) return tag;
  const branch = revParse(repo, `refs/heads/${want.ref}`) ?? revParse(repo, `refs/remotes/origin/${want.ref}`);
  if (branch) {
    if (!allowBranch) throw new UserError(`--ref ${want.ref} is a branch, which pins nothing; use a tag or commit, or pass --allow-branch to build its current tip`);
    return branch;
  }
  throw new UserError(`--ref ${want.ref} is neither a tag, a branch nor a full SHA in ${source}; pick a tag from upstream.pin.json "releases" or a 40-hex commit`);
}

function fetchInto(mirror: string, location: string, source: string, want: { commit: string | null; tag: string | null; ref: string }, allowBranch: boolean): string {
  if (!existsSync(mirror)) {
    mkdirSync(path.dirname(mirror), { recursive: true });
    git(["init", "--quiet", "--bare", mirror]);
  }
  const offline = `cannot reach upstream ${source}; work offline from a local clone or mirror: --upstream /path/to/mirror (or ${UPSTREAM_ENV}=/path/to/mirror)`;
  try {
    if (want.tag) {
      git(["-C", mirror, "fetch", "--quiet", "--no-tags", location, `+refs/tags/${want.tag}:refs/tags/${want.tag}`]);
      return git(["-C", mirror, "rev-parse", `refs/tags/${want.tag}^{commit}`]);
    }
    if (want.commit) {
      if (!revParse(mirror, want.commit)) git(["-C", mirror, "fetch", "--quiet", "--no-tags", location, want.commit]);
      return git(["-C", mirror, "rev-parse", `${want.commit}^{commit}`]);
    }
    // Not a known release or SHA: a tag we do not list, or a branch.
    const remote = git(["ls-remote", location, `refs/tags/${want.ref}`, `refs/heads/${want.ref}`]);
    if (!remote) throw new UserError(`--ref ${want.ref} is neither a tag, a branch nor a full SHA in ${source}; pick a tag from upstream.pin.json "releases" or a 40-hex commit`);
    const isBranch = remote.split("\n").every((l) => l.includes("refs/heads/"));
    if (isBranch && !allowBranch) {
      throw new UserError(`--ref ${want.ref} is a branch, which pins nothing; use a tag or commit, or pass --allow-branch to build its current tip`);
    }
    const ref = isBranch ? `refs/heads/${want.ref}` : `refs/tags/${want.ref}`;
    git(["-C", mirror, "fetch", "--quiet", "--no-tags", location, `+${ref}:refs/fetched/${want.ref}`]);
    return git(["-C", mirror, "rev-parse", `refs/fetched/${want.ref}^{commit}`]);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const msg = firstLine(err);
    if (/could not read|unable to access|could not resolve|not found|does not appear to be a git repository|Connection|timed out/i.test(msg)) {
      throw new UserError(`${offline} (git: ${msg})`);
    }
    throw new UserError(`git could not fetch ${want.ref} from ${source}: ${msg}`);
  }
}

export function treeDir(cacheDir: string, commit: string): string {
  return path.join(cacheDir, "trees", commit);
}

/** `git archive` the commit into .cache/upstream/trees/<sha> once (temp dir, then rename). */
function exportTree(mirror: string, cacheDir: string, commit: string): string {
  const dir = treeDir(cacheDir, commit);
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync("sh", ["-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", mirror, commit, tmp], { stdio: ["ignore", "ignore", "pipe"] });
  renameSync(tmp, dir);
  return dir;
}

/** A short human label: `v2.0.3 (edd7a75)` or `directory`. */
export function describeUpstream(u: Pick<FetchedUpstream, "tag" | "commit" | "kind">): string {
  if (u.kind === "directory") return "plain directory (no commit)";
  return u.tag ? `${u.tag} (${shortSha(u.commit)})` : shortSha(u.commit);
}

