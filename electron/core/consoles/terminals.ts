// Terminals on the host through node-pty: the host's own shell, or ssh into a guest. Each
// terminal belongs to the connection that opened it and ends with it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pty from 'node-pty';
import { CorralError, type Session } from '../api/dispatcher.js';

const HIGH_WATER = 4 * 1024 * 1024;

interface Term {
  pty: pty.IPty;
  owner: Session;
}

export interface TerminalSpec {
  title: string;
  file: string;
  args: string[];
  cwd?: string;
}

export class Terminals {
  private readonly terms = new Map<string, Term>();

  open(spec: TerminalSpec, cols: number, rows: number, owner: Session): { id: string; title: string } {
    const id = `t${randomBytes(8).toString('hex')}`;
    let p: pty.IPty;
    try {
      p = pty.spawn(spec.file, spec.args, {
        name: 'xterm-256color',
        cols,
        rows,
        cwd: spec.cwd ?? os.homedir(),
        env: { ...process.env, TERM: 'xterm-256color', COLORTERM: 'truecolor' } as Record<string, string>,
        encoding: null,
      } as pty.IPtyForkOptions);
    } catch (err) {
      throw new CorralError('failed', `could not start ${spec.file}: ${(err as Error).message}`);
    }
    this.terms.set(id, { pty: p, owner });
    let paused = false;
    p.onData((d: string | Buffer) => {
      owner.send('terminal.data', { id, data: Buffer.from(d as Buffer).toString('base64') });
      // a client that cannot keep up pauses the program's output instead of growing our memory
      if (!paused && owner.backlog() > HIGH_WATER) {
        paused = true;
        p.pause();
        owner.whenDrained(HIGH_WATER / 4, () => {
          paused = false;
          if (!owner.closed) p.resume();
        });
      }
    });
    p.onExit(({ exitCode }) => {
      this.terms.delete(id);
      owner.send('terminal.exit', { id, code: exitCode });
    });
    owner.onClose(() => this.kill(id));
    return { id, title: spec.title };
  }

  write(id: string, data: Buffer, who: Session): void {
    this.get(id, who).pty.write(data.toString('utf8'));
  }

  resize(id: string, cols: number, rows: number, who: Session): void {
    this.get(id, who).pty.resize(cols, rows);
  }

  close(id: string, who: Session): void {
    this.get(id, who);
    this.kill(id);
  }

  closeAll(): void {
    for (const id of [...this.terms.keys()]) this.kill(id);
  }

  private get(id: string, who: Session): Term {
    const t = this.terms.get(id);
    // another connection's terminal is as good as nonexistent
    if (!t || t.owner !== who) throw new CorralError('not-found', `no terminal ${id}`, 'id');
    return t;
  }

  private kill(id: string): void {
    const t = this.terms.get(id);
    if (!t) return;
    this.terms.delete(id);
    try {
      t.pty.kill('SIGHUP');
    } catch {
      // already gone
    }
  }
}

export function hostShell(): TerminalSpec {
  const shell =
    process.env.SHELL && path.isAbsolute(process.env.SHELL) ? process.env.SHELL : fs.existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
  return { title: `${os.userInfo().username}@${os.hostname()}`, file: shell, args: ['-l'] };
}

export function sshInto(vmName: string, user: string, host: string, port: number, knownHosts: string): TerminalSpec {
  const ssh = ['/usr/bin/ssh', '/bin/ssh', '/usr/local/bin/ssh'].find((p) => fs.existsSync(p));
  if (!ssh) throw new CorralError('failed', 'ssh is not installed on the host (Debian/Ubuntu: sudo apt install openssh-client)');
  return {
    title: `${user}@${vmName}`,
    file: ssh,
    // a guest's host key is learnt on first use and kept per VM (reinstalls change it)
    args: ['-p', String(port), '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${knownHosts}`, '--', `${user}@${host}`],
  };
}
