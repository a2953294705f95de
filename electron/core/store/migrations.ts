// Numbered schema migrations: index i upgrades user_version i -> i+1. Never edit a shipped one.
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE vms (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    config         TEXT NOT NULL,               -- JSON VmConfig without disks
    config_version INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    state          TEXT NOT NULL DEFAULT 'stopped',
    state_since    INTEGER NOT NULL,
    pid            INTEGER,
    pid_start      TEXT,                        -- process start time: identity check on reattach
    restarts       INTEGER NOT NULL DEFAULT 0,
    last_exit      TEXT                         -- JSON ExitInfo
  );
  CREATE TABLE vm_config_history (
    vm_id   TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    config  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (vm_id, version)
  );
  CREATE TABLE disks (
    vm_id  TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    idx    INTEGER NOT NULL,
    path   TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('qcow2', 'raw')),
    owned  INTEGER NOT NULL,
    PRIMARY KEY (vm_id, idx)
  );
  CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id      TEXT,
    vm_name    TEXT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    reason     TEXT,
    message    TEXT NOT NULL,
    detail     TEXT
  );
  CREATE INDEX events_by_vm ON events (vm_id, id);
  `,
  `
  -- supervision: the restart policy's state survives a host restart (resumes mid-backoff)
  ALTER TABLE vms ADD COLUMN policy_state TEXT;
  ALTER TABLE vms ADD COLUMN restart_at INTEGER;
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  -- resources: what the running QEMU actually has (settings that differ are pending until
  -- the next boot) and a day of per-minute statistics
  ALTER TABLE vms ADD COLUMN applied_config TEXT;
  CREATE TABLE stats (
    vm_id      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    cpu        REAL NOT NULL,
    rss        INTEGER NOT NULL,
    balloon    INTEGER,
    disk_read  REAL NOT NULL,
    disk_write REAL NOT NULL
  );
  CREATE INDEX stats_by_vm ON stats (vm_id, at);
  `,
  `
  -- when the current QEMU started (uptime survives pause/resume and host restarts)
  ALTER TABLE vms ADD COLUMN started_at INTEGER;
  `,
  `
  -- accounts: local users (scrypt hashes), API tokens (SHA-256 of the secret) and the audit
  -- log of every mutating call
  CREATE TABLE users (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password   TEXT NOT NULL,                 -- scrypt$N$r$p$salt$hash
    created_at INTEGER NOT NULL
  );
  CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE ON UPDATE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    last_used   INTEGER
  );
  CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    who     TEXT NOT NULL,
    method  TEXT NOT NULL,
    target  TEXT,
    address TEXT,
    ok      INTEGER NOT NULL,
    error   TEXT
  );
  `,
  `
  -- storage pools: the only host directories a VM's disks, ISOs, kernels and initrds may come
  -- from (the data dir's images folder is the pool "default" and is not stored). Existing
  -- disks keep their "owned" flag: Corral set it only on disks it created itself.
  CREATE TABLE IF NOT EXISTS pools (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    path       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  `,
  `
  -- snapshots: a tree per VM (internal qcow2 snapshots whose tag is the row's id), where the
  -- VM is in it ("you are here": the parent of its next snapshot) and its schedule
  CREATE TABLE snapshots (
    id          TEXT PRIMARY KEY,
    vm_id       TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    parent_id   TEXT,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    has_ram     INTEGER NOT NULL,
    kind        TEXT NOT NULL,                  -- live | disk | offline
    config      TEXT NOT NULL,                  -- JSON VmConfig it was taken with
    pause_ms    INTEGER,
    consistency TEXT NOT NULL,                  -- full | frozen | crash | offline
    scheduled   INTEGER NOT NULL DEFAULT 0,
    files       TEXT NOT NULL,                  -- JSON: which files hold the tag (disks, vars, tpm)
    UNIQUE (vm_id, name COLLATE NOCASE)
  );
  CREATE INDEX snapshots_by_vm ON snapshots (vm_id, created_at);
  CREATE TABLE snapshot_heads (
    vm_id      TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
    current_id TEXT,
    every_sec  INTEGER,
    keep       INTEGER,
    next_at    INTEGER
  );
  `,
  `
  -- linked clones: read-only base images Corral made and manages (in the default pool's
  -- bases folder). A disk with a base is a qcow2 overlay on it; Corral opens that one chain
  -- and no other backing file. A base goes when its last dependent disk goes.
  CREATE TABLE bases (
    path       TEXT PRIMARY KEY,
    source     TEXT NOT NULL,                 -- the VM it was made from (name at the time)
    created_at INTEGER NOT NULL
  );
  ALTER TABLE disks ADD COLUMN base TEXT REFERENCES bases(path);
  `,
  `
  -- shared pools: a pool every host of the cluster sees at the same path (an NFS mount, say);
  -- only a VM whose every file is in one may be HA, and only hosts with it may run the VM
  ALTER TABLE pools ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- network traffic in the day history: the totals and each NIC's figures (JSON: NicRate[],
  -- null rates for a NIC the host cannot measure), so the graphs show what the live view does
  ALTER TABLE stats ADD COLUMN net_rx REAL;
  ALTER TABLE stats ADD COLUMN net_tx REAL;
  ALTER TABLE stats ADD COLUMN nics TEXT;
  `,
  `
  -- a VM's history moves with it: events that happened on another host before it came here
  -- name that host (null: here), and the host-wide log leaves them out
  ALTER TABLE events ADD COLUMN host TEXT;
  `,
];
