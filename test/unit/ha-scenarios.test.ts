// HA decisions played on a simulated cluster (test/support/ha-sim.ts: the real LeaseKeeper,
// Fencer, HaLeader and Balancer on a fake clock), in the style of Proxmox's pve-ha-manager
// tests: each file in ha-scenarios/ lists hosts, VMs and timed actions, then the exact log.
//
// Scenario file format (# starts a comment):
//   ttl <time> [margin <time>]             lease TTL and fence margin (default 10s, 2s)
//   host ID mem=MiB cpus=N
//   vm NAME on=HOST [mem=MiB] [cpus=N] [prio=N] [group=G] [hosts=H1,H2] [ha=off]
//   <time> <action> [args]                 freeze H | thaw H | partition H | heal H | die H |
//                                          boot H | load H mem=MiB cpu=N | balance on|off | wait
//   expect                                 then the log: +<time> <what>, and last "= " the end state
// Set UPDATE_SCENARIOS=1 to print the actual logs instead of comparing (then review them).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HaSim, vmSpec, type SimHostSpec, type SimVmSpec } from '../support/ha-sim';
import { parseTime } from '../support/scenario-time';

const DIR = path.join(__dirname, 'ha-scenarios');

function parse(text: string) {
  const hosts: SimHostSpec[] = [];
  const vms: SimVmSpec[] = [];
  const actions: Array<{ at: number; verb: string; args: string[] }> = [];
  const expected: string[] = [];
  let ttl = 10_000;
  let margin = 2000;
  let expecting = false;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    if (expecting) {
      expected.push(line.replace(/\s+/, ' '));
      continue;
    }
    const [head, ...rest] = line.split(/\s+/);
    if (head === 'expect') expecting = true;
    else if (head === 'ttl') {
      ttl = parseTime(rest[0]!);
      if (rest[1] === 'margin') margin = parseTime(rest[2]!);
    } else if (head === 'host') {
      const o = Object.fromEntries(rest.slice(1).map((kv) => kv.split('=')));
      hosts.push({ id: rest[0]!, memMiB: Number(o.mem ?? 4096), cpus: Number(o.cpus ?? 4) });
    } else if (head === 'vm') vms.push(vmSpec(rest[0]!, rest.slice(1)));
    else {
      if (!rest[0]) throw new Error(`line ${i + 1}: an action needs a verb`);
      actions.push({ at: parseTime(head!), verb: rest[0], args: rest.slice(1) });
    }
  }
  return { hosts, vms, actions, expected, ttl, margin };
}

describe('HA scenarios', () => {
  for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith('.scenario'))) {
    it(file.replace('.scenario', ''), async () => {
      const sc = parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
      const sim = new HaSim(sc.hosts, sc.vms, sc.ttl / 1000, sc.margin);
      await sim.start();
      for (const a of sc.actions) {
        await sim.advanceTo(a.at);
        await sim.act(a.verb, a.args);
      }
      // then long enough for every consequence: two TTLs and a balancing hold after the last action
      await sim.advanceTo((sc.actions.at(-1)?.at ?? 0) + 2 * sc.ttl + 40_000);
      const actual = [...sim.log, `= ${sim.summary}`];
      if (process.env.UPDATE_SCENARIOS) {
        console.log(`${file}:\n${actual.join('\n')}`);
        return;
      }
      expect(actual).toEqual(sc.expected);
      expect(actual.join('\n')).not.toMatch(/INVARIANT BROKEN/);
    });
  }
});
