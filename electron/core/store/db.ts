// Opens the SQLite store: WAL with synchronous=NORMAL, and numbered migrations.
//
// NORMAL commits without an fsync; WAL keeps the file consistent through any crash, and a power
// loss can only drop the last commits. Most commits are runtime facts (states, pids, events,
// samples), and a power loss that drops them has also stopped every guest they describe, so an
// fsync apiece (several ms each, on the path from a crash to the restart) buys nothing. What a
// user made (a VM's config, pools, accounts) is made durable at once with makeDurable().
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export interface OpenOptions {
  /** Electron builds of the native addon live apart from Node's (see scripts/electron-native.mjs). */
  nativeBinding?: string;
}

export function openDb(file: string, opts: OpenOptions = {}): Db {
  const db = new Database(file, opts.nativeBinding ? { nativeBinding: opts.nativeBinding } : {});
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema v${current} is newer than this Corral (v${MIGRATIONS.length}); upgrade Corral`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Makes every commit so far durable (now, or right after the transaction under way commits): a
 * checkpoint under synchronous=NORMAL syncs the WAL first, then copies it into the database file.
 */
export function makeDurable(db: Db): void {
  if (db.inTransaction) queueMicrotask(() => makeDurable(db));
  else db.pragma('wal_checkpoint(PASSIVE)');
}
