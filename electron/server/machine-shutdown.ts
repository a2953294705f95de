// What `corral serve` does with its guests when it is told to stop. A restart of the service
// (an upgrade, `systemctl restart`) leaves them running for the next Corral to reattach; a
// machine shutdown or reboot stops them in order first. systemd says which: while the machine
// is going down, `systemctl is-system-running` answers "stopping" (the system manager's state,
// also what a user unit sees, since the machine's shutdown stops every user manager too).
import { execFile } from 'node:child_process';

export type GuestsOnExit = 'stop' | 'leave';

/** CORRAL_GUESTS_ON_EXIT=stop|leave overrides the detection (e.g. an init system without systemd). */
export async function guestsOnExit(env: NodeJS.ProcessEnv = process.env): Promise<{ action: GuestsOnExit; why: string }> {
  const forced = env.CORRAL_GUESTS_ON_EXIT;
  if (forced === 'stop' || forced === 'leave') return { action: forced, why: `CORRAL_GUESTS_ON_EXIT=${forced}` };
  const state = await systemState(env);
  if (state === 'stopping') return { action: 'stop', why: 'the machine is shutting down' };
  return { action: 'leave', why: state ? `systemd is ${state}, not shutting down` : 'not under systemd' };
}

/** The system manager's state, or null without systemd; answers within a few seconds. */
function systemState(env: NodeJS.ProcessEnv): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('systemctl', ['is-system-running'], { env, timeout: 5000 }, (err, stdout) => {
      const state = stdout.trim().split('\n')[0] ?? '';
      // it exits non-zero for any state but "running", so the answer is in stdout either way
      resolve(/^[a-z-]+$/.test(state) && state !== 'offline' && !(err && 'code' in err && err.code === 'ENOENT') ? state : null);
    });
  });
}
