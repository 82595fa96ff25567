// The client step: build upstream's web client (its sources as the client patches left them) the way upstream does (`npm ci` in client/, then its
// `build` npm script) on the Node 22 that runs the monitor, and leave only client/dist/ in the
// tree: the server serves client/dist (server/index.js, in production); sources and the client's
// node_modules are build inputs, not something the app bundles.
//
// The built dist is cached in .cache/client-dist/<inputs>/ by a hash of everything that decides
// it (the patched client sources and lockfile, the root package.json whose version Vite bakes in,
// the Node version), so a rebuild where only a server patch changed runs neither npm nor the
// bundler, and a changed client patch rebuilds it.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { isCacheEntry, publishCacheDir } from "../lib/cache-dir.ts";
import { UserError } from "../lib/errors.ts";
import { hashManifest, listFiles } from "../lib/hash.ts";
import { cacheDir, repoRoot } from "../lib/paths.ts";
import { pathWithNodeFirst, runLogged } from "./run-logged.ts";

export const CLIENT_DIR = "client";
export const CLIENT_DIST = `${CLIENT_DIR}/dist`;
export const clientCacheRoot = path.join(cacheDir, "client-dist");
const DONE_MARKER = ".build-complete";
/** Files under client/ that the server reads at run time, kept in the tree beside client/dist. */
export const SERVER_READS = ["client/public/favicon.svg"];

/** Hash of the client build's inputs, from per-file hashes of the patched staged tree and the Node version. */
export function clientInputHash(hashes: Record<string, string>, nodeVersion: string): string {
  const inputs: Record<string, string> = { "<node>": nodeVersion };
  for (const [f, h] of Object.entries(hashes)) if (f.startsWith(`${CLIENT_DIR}/`) || f === "package.json") inputs[f] = h;
  return hashManifest(inputs).slice(0, 16);
}

export interface ClientBuild {
  inputHash: string;
  /** Files of client/dist in the tree, posix paths relative to it (client/dist/...). */
  files: string[];
  /** True when the dist came from the cache (npm and the bundler did not run). */
  cached: boolean;
}

export interface ClientOptions {
  hashes: Record<string, string>;
  nodeBinary: string;
  nodeVersion: string;
  log?: (line: string) => void;
  logDir?: string;
  cacheRoot?: string;
}

/** Builds (or takes from the cache) client/dist in the staging tree and removes everything else under client/. */
export async function buildClient(stagingDir: string, opts: ClientOptions): Promise<ClientBuild> {
  const clientDir = path.join(stagingDir, CLIENT_DIR);
  const inputHash = clientInputHash(opts.hashes, opts.nodeVersion);
  const cacheRoot = opts.cacheRoot ?? clientCacheRoot;
  const cached = path.join(cacheRoot, inputHash);
  const hit = isCacheEntry(cached, DONE_MARKER);
  if (!hit) {
    // NODE_PATH: the fixture client's build.js requires the project's own esbuild, also from a staging
    // folder outside the repo (tests build in a temp dir); upstream's client resolves its own Vite first.
    const env = { ...process.env, PATH: pathWithNodeFirst(opts.nodeBinary), NODE_PATH: path.join(repoRoot, "node_modules") };
    // --include=dev: the build needs the client's devDependencies (Vite) even if NODE_ENV=production is set.
    const common = { cwd: clientDir, logDir: opts.logDir, log: opts.log };
    await runLogged({ ...common, name: "client-npm-ci", title: "client: npm ci", cmd: "npm", args: ["ci", "--include=dev", "--no-audit", "--no-fund"], env });
    await runLogged({ ...common, name: "client-build", title: "client: npm run build", cmd: "npm", args: ["run", "build"], env });
    const dist = path.join(clientDir, "dist");
    if (!existsSync(dist) || listFiles(dist).length === 0) {
      throw new UserError(`client build finished but left no files in client/dist (see .cache/logs/client-build.log); does upstream's client still build into dist/?`);
    }
    mkdirSync(cacheRoot, { recursive: true });
    const tmp = path.join(cacheRoot, `.staging-${inputHash}-${process.pid}-${Date.now()}`);
    cpSync(dist, path.join(tmp, "dist"), { recursive: true });
    publishCacheDir(tmp, cached, DONE_MARKER);
  }
  // Client sources the server itself reads at run time stay (upstream's server/index.js serves
  // /favicon.svg from client/public/, not from dist: without it every page load logs a 404).
  const kept = SERVER_READS.filter((f) => existsSync(path.join(stagingDir, f)));
  const keptDir = path.join(stagingDir, `.client-kept-${process.pid}`);
  for (const f of kept) cpSync(path.join(stagingDir, f), path.join(keptDir, f));
  rmSync(clientDir, { recursive: true, force: true });
  cpSync(path.join(cached, "dist"), path.join(clientDir, "dist"), { recursive: true });
  for (const f of kept) cpSync(path.join(keptDir, f), path.join(stagingDir, f));
  rmSync(keptDir, { recursive: true, force: true });
  const files = [...listFiles(path.join(clientDir, "dist")).map((f) => `${CLIENT_DIST}/${f}`), ...kept];
  return { inputHash, files, cached: hit };
}
