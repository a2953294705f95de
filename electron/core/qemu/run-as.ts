// Who QEMU runs as. A host running as root must not hand root (and every capability) to a
// process that parses guest-controlled device traffic: QEMU opens its disks, sockets and
// logs as root and then drops to an unprivileged system user with `-runas`. Without root,
// QEMU simply runs as the host's own user and nothing here applies.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
}

/** The dedicated system user Corral creates when it runs as root and none is configured. */
export const DEFAULT_QEMU_USER = 'corral-qemu';
const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * The user QEMU drops to, or null when the host is not root (or CORRAL_QEMU_USER=root says
 * to keep root, which is logged as a warning by the caller). Creates the default user when
 * it is missing; a configured user must exist.
 */
export function resolveQemuUser(env: NodeJS.ProcessEnv, log: (s: string) => void = () => undefined): QemuUser | null {
  if (process.getuid?.() !== 0) return null;
  const wanted = env.CORRAL_QEMU_USER?.trim() || DEFAULT_QEMU_USER;
  if (wanted === 'root') return null;
  if (!NAME.test(wanted)) throw new Error(`CORRAL_QEMU_USER must be a user name, not "${wanted}"`);
  let user = lookupUser(wanted);
  if (!user && wanted === DEFAULT_QEMU_USER) {
    try {
      createSystemUser(wanted);
      log(`note: created the system user ${wanted}, which QEMU runs as`);
    } catch (err) {
      // another host on this machine may have created it at the same moment
      if (!lookupUser(wanted)) throw err;
    }
    user = lookupUser(wanted);
  }
  if (!user) throw new Error(`QEMU should run as "${wanted}" (CORRAL_QEMU_USER), but there is no such user`);
  if (user.uid === 0) throw new Error(`QEMU must not run as a user with uid 0 ("${wanted}"); set CORRAL_QEMU_USER=root to say so`);
  return user;
}

/**
 * The user's line in /etc/passwd, where useradd puts a system user. Read first because getent is
 * a process, and forking the host blocks its event loop at every start (under load, tens of ms).
 */
function passwdLine(name: string): string | null {
  try {
    return (
      fs
        .readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${name}:`)) ?? null
    );
  } catch {
    return null;
  }
}

function lookupUser(name: string): QemuUser | null {
  // a user only NSS knows (LDAP, systemd-userdb) is asked of getent
  let line = passwdLine(name);
  if (line === null) {
    try {
      line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null; // getent exits 2 for an unknown user
    }
  }
  const [, , uid, gid] = line.split(':');
  const u = Number(uid);
  const g = Number(gid);
  return Number.isInteger(u) && Number.isInteger(g) ? { name, uid: u, gid: g } : null;
}

function createSystemUser(name: string): void {
  try {
    execFileSync(
      'useradd',
      [
        '--system',
        '--user-group',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        '--comment',
        'Corral QEMU guests',
        name,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    throw new Error(
      `Corral runs as root and runs QEMU as the system user ${name}, which could not be created (${why}); ` +
        `create it (useradd --system --user-group ${name}) or name another with CORRAL_QEMU_USER`,
    );
  }
}
