import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, type VmConfig } from '../../electron/core/api/contract';
import { openDb } from '../../electron/core/store/db';
import { EventRepo } from '../../electron/core/store/event-repo';
import { MIGRATIONS } from '../../electron/core/store/migrations';
import { VmRepo } from '../../electron/core/store/vm-repo';
import { tempDir } from '../helpers';

const config: VmConfig = {
  ...CONFIG_DEFAULTS,
  cpus: 2,
  disks: [{ path: '/d/disk0.qcow2', format: 'qcow2', owned: true }],
  restart: 'on-failure',
};

describe('SQLite store', () => {
  it('runs in WAL with synchronous=NORMAL and migrates to the latest version', () => {
    const db = openDb(path.join(tempDir(), 'c.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
  });

  it('puts a saved config into the database file itself at once; runtime facts may wait in the WAL', () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.db');
    const db = openDb(file);
    const vms = new VmRepo(db);
    // what a power loss would leave: the database file without its WAL
    const withoutWal = () => {
      const copy = path.join(dir, `copy-${Math.random()}.db`);
      fs.copyFileSync(file, copy);
      const c = new Database(copy, { readonly: true });
      try {
        return c
          .prepare<[], { name: string; state: string; cpus: number }>("SELECT name, state, json_extract(config, '$.cpus') AS cpus FROM vms")
          .all();
      } finally {
        c.close();
      }
    };
    vms.insert('id1', 'kept', config, 1000);
    expect(withoutWal()).toEqual([{ name: 'kept', state: 'stopped', cpus: 2 }]);
    vms.setRuntime('id1', { state: 'running', pid: 1234 }, 2000);
    expect(withoutWal()).toEqual([{ name: 'kept', state: 'stopped', cpus: 2 }]);
    // inside a transaction: right after it commits
    vms.transaction(() => vms.updateConfig('id1', 'kept', { ...config, cpus: 3 }, 3000));
    return Promise.resolve().then(() => {
      expect(withoutWal()).toEqual([{ name: 'kept', state: 'running', cpus: 3 }]);
      vms.delete('id1');
      expect(withoutWal()).toEqual([]);
      db.close();
    });
  });

  it('refuses a database from a newer Corral', () => {
    const file = path.join(tempDir(), 'c.db');
    const db = openDb(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => openDb(file)).toThrow(/newer than this Corral/);
  });

  it('keeps VMs, disks, versioned configs and runtime facts across reopen', () => {
    const file = path.join(tempDir(), 'c.db');
    let db = openDb(file);
    let vms = new VmRepo(db);
    vms.insert('id1', 'Web, "one"', config, 1000);
    expect(vms.nameTaken('web, "ONE"')).toBe(true); // names are unique without regard to case
    vms.updateConfig('id1', 'Web, "one"', { ...config, cpus: 4 }, 2000);
    vms.setRuntime('id1', { state: 'running', pid: 1234, pidStart: '999', lastExit: null }, 3000);
    db.close();

    db = openDb(file);
    vms = new VmRepo(db);
    const rec = vms.find('Web, "one"')!;
    expect(rec).toMatchObject({ id: 'id1', state: 'running', stateSince: 3000, pid: 1234, pidStart: '999', configVersion: 2 });
    expect(rec.config).toEqual({ ...config, cpus: 4 });
    const history = db.prepare("SELECT version, json_extract(config, '$.cpus') AS cpus FROM vm_config_history ORDER BY version").all();
    expect(history).toEqual([
      { version: 1, cpus: 2 },
      { version: 2, cpus: 4 },
    ]);
    vms.delete('id1');
    expect(db.prepare('SELECT count(*) AS n FROM disks').get()).toEqual({ n: 0 });
  });

  it('reads a config an older Corral wrote with the hardware it ran on', () => {
    const db = openDb(path.join(tempDir(), 'c.db'));
    const vms = new VmRepo(db);
    vms.insert('id1', 'old', config, 1000);
    // written before CPU models were pinned: no cpuModel, no firmware
    const { cpuModel: _c, firmware: _f, ...older } = config;
    db.prepare('UPDATE vms SET config = ? WHERE id = ?').run(JSON.stringify(older), 'id1');
    expect(vms.find('old')!.config).toMatchObject({ cpuModel: 'max', firmware: 'bios' });
    vms.insert('id2', 'new', config, 1000);
    expect(vms.find('new')!.config.cpuModel).toBe(config.cpuModel);
  });

  it('reads a config from before NIC lists as its one slirp NIC, same MAC, same forwards', () => {
    const db = openDb(path.join(tempDir(), 'c.db'));
    const vms = new VmRepo(db);
    vms.insert('id1', 'old', config, 1000);
    const fwd = { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22, exposed: false };
    const { nics: _n, ...older } = { ...config, forwards: [fwd] };
    db.prepare('UPDATE vms SET config = ? WHERE id = ?').run(JSON.stringify(older), 'id1');
    const nics = vms.find('old')!.config.nics;
    expect(nics).toEqual([{ id: 'net0', kind: 'user', mac: '52:54:00:12:34:56', bridge: null, network: null, forwards: [fwd] }]);
    // a VM that chose no NIC stays without
    vms.insert('id2', 'none', { ...config, nics: [] }, 1000);
    expect(vms.find('none')!.config.nics).toEqual([]);
  });

  it('logs events newest first, per VM', () => {
    const db = openDb(path.join(tempDir(), 'c.db'));
    const ev = new EventRepo(db);
    for (let i = 0; i < 3; i++)
      ev.add({
        vmId: i % 2 ? 'b' : 'a',
        vmName: 'n',
        at: i,
        kind: 'state',
        from: 'stopped',
        to: 'starting',
        reason: null,
        message: `m${i}`,
      });
    expect(ev.list(10).map((e) => e.message)).toEqual(['m2', 'm1', 'm0']);
    expect(ev.list(10, 'a').map((e) => e.message)).toEqual(['m2', 'm0']);
  });
});
