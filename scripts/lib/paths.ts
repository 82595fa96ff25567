import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (two levels above scripts/lib). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const generatedDir = path.join(repoRoot, ".generated");
export const defaultOutDir = path.join(generatedDir, "agent-monitor");
export const cacheDir = path.join(repoRoot, ".cache");
export const fixtureUpstreamDir = path.join(repoRoot, "test", "fixtures", "upstream");
