// better-sqlite3 (root devDependency, built for the machine's Node 20) loaded through require with
// a minimal local type, so the bench needs no @types package.
import { createRequire } from "node:module";

export interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
}

export interface SqliteDatabase {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  close(): void;
  readonly inTransaction: boolean;
}

export interface SqliteOptions {
  readonly?: boolean;
  fileMustExist?: boolean;
  /** busy_timeout in ms */
  timeout?: number;
}

const require = createRequire(import.meta.url);
const Ctor = require("better-sqlite3") as new (file: string, options?: SqliteOptions) => SqliteDatabase;

export function openDatabase(file: string, options?: SqliteOptions): SqliteDatabase {
  return new Ctor(file, options);
}
