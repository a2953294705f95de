// `vm create` and `vm set`: most options set one API argument each, declared with fields() so that
// the compiler checks the argument against the contract, and the run functions pass them on as is.
import type { ArgsIn, HaConfig } from '../../core/api/contract.js';
import { out, shellQuote } from '../format.js';
import { command, fields, option, UsageError } from '../table.js';
import { PORTABLE_CPU_MODEL } from '../../core/api/rules.js';
import {
  absPath,
  bytes,
  duration,
  forward,
  int,
  liveness,
  memoryMiB,
  nic,
  oneOf,
  onOff,
  orNull,
  percent,
  rate,
  share,
  text,
} from '../values.js';

const create = fields<ArgsIn<'vm.create'>>();
const update = fields<ArgsIn<'vm.update'>>();
const POLICIES = ['never', 'on-failure', 'always'] as const;
const RESTART = POLICIES.join('|');
const restart = oneOf(...POLICIES);
const FIRMWARE = 'bios|uefi|uefi-secure';
const firmware = oneOf('bios', 'uefi', 'uefi-secure');
const CPU_MODEL_HELP = `the CPU model the guest sees: a named model (default ${PORTABLE_CPU_MODEL}, portable) or host (KVM passthrough, not portable)`;

const HA_OPTIONS = {
  ha: option('on|off', 'high availability: started on another host if this one dies (every disk on a shared pool)', onOff),
  'ha-priority': option('N', 'HA priority, 0-1000: higher moves first when room is short (default 0)', int),
  'ha-group': option('GROUP|none', 'HA anti-affinity group: two VMs of one group never share a host', orNull('none', text)),
  'ha-hosts': option('H1,H2|none', 'hosts to prefer, in order, when the VM must move', (t, f) =>
    t === 'none' ? [] : t.split(',').map((h) => text(h.trim(), f)),
  ),
};

function mergeHa(cur: HaConfig, o: { ha?: boolean; 'ha-priority'?: number; 'ha-group'?: string | null; 'ha-hosts'?: string[] }): HaConfig {
  return {
    enabled: o.ha ?? cur.enabled,
    priority: o['ha-priority'] ?? cur.priority,
    group: o['ha-group'] !== undefined ? o['ha-group'] : cur.group,
    hosts: o['ha-hosts'] ?? cur.hosts,
  };
}

export const configCommands = [
  command({
    words: 'vm create',
    args: ['NAME'],
    summary: 'Create a VM (stopped); names may contain spaces and any letters',
    options: {
      cpus: create.option('cpus', 'N', 'vCPUs (default 1)', int),
      memory: create.option('memoryMiB', 'SIZE', 'memory, e.g. 512M or 2G; a bare number means MiB (default 512M)', memoryMiB),
      disk: create.option('disk', 'SIZE', 'a new qcow2 disk of this size, e.g. 20G', (t, f) => ({ size: bytes(t, f) })),
      'disk-image': create.option(
        'disk',
        'PATH',
        'an existing qcow2 or raw image in a storage pool instead (never grown or deleted by Corral)',
        (t, f) => ({
          image: absPath(t, f),
        }),
      ),
      'disk-format': option('qcow2|raw', 'the format of --disk-image (default: read from its header)', oneOf('qcow2', 'raw')),
      iso: create.option('iso', 'PATH', 'a CD-ROM image in a storage pool, e.g. an installer', absPath),
      kernel: create.option('kernel', 'PATH', 'boot this Linux kernel (in a storage pool) directly', absPath),
      initrd: create.option('initrd', 'PATH', 'the initrd for --kernel', absPath),
      append: create.option('append', 'ARGS', 'the kernel command line for --kernel', text),
      forward: create.many(
        'forwards',
        'tcp:HOSTPORT:GUESTPORT',
        'forward a host port (on 127.0.0.1) to the guest; another address or a port below 1024 needs :exposed at the end',
        forward,
      ),
      share: create.many(
        'shares',
        'HOSTDIR[:TAG][:ro]',
        'share a host folder with the guest (an admin only), mounted by TAG (default: the folder name); see vm share',
        share,
      ),
      nic: {
        ...option(
          'passt|user|bridge:BR|private:NAME|none',
          'a NIC, repeatable; --forward goes on the first passt or user one (default: passt, user where passt is missing)',
          nic,
        ),
        multiple: true as const,
      },
      restart: create.option('restart', RESTART, 'what to do when the guest ends (default never)', restart),
      firmware: create.option('firmware', FIRMWARE, 'the firmware (default uefi with --iso, bios otherwise)', firmware),
      tpm: create.option('tpm', 'on|off', 'a TPM 2.0 (swtpm) whose state stays with the VM (default off)', onOff),
      'cpu-model': create.option('cpuModel', 'MODEL', CPU_MODEL_HELP, text),
      host: create.option('host', 'HOST', 'in a cluster: the host to create it on (default: the host with the most room)', text),
    },
    async run({ args: [name], o, api, host }) {
      if (o.disk && o['disk-image']) throw new UsageError('use either --disk SIZE (new disk) or --disk-image PATH (existing), not both');
      if (o['disk-format'] && !o['disk-image']) throw new UsageError('--disk-format applies to --disk-image');
      const disk = o['disk-image'] && o['disk-format'] ? { disk: { ...o['disk-image'], format: o['disk-format'] } } : {};
      const nics = o.nic?.length ? { nics: o.nic.filter((n): n is NonNullable<typeof n> => n !== null) } : {};
      if (o.nic && o.nic.length > 1 && o.nic.includes(null)) throw new UsageError('--nic none means no NIC: give it alone');
      const vm = await (await host()).call('vm.create', { ...api, ...disk, ...nics, name } as ArgsIn<'vm.create'>);
      const where = vm.host ? ` on host ${vm.host.name}` : '';
      out(`Created "${vm.name}"${where}. Start it: corral vm start ${shellQuote(vm.name)}`);
      return 0;
    },
  }),
  command({
    words: 'vm set',
    args: ['NAME'],
    summary: 'Change the settings of a VM; what cannot change live waits for the next boot',
    options: {
      restart: update.option('restart', RESTART, 'what to do when the guest ends', restart),
      'max-crashes': update.option('maxCrashes', 'N', 'crashes within --window that stop automatic restarts (crash-loop)', int),
      window: update.option('crashWindowSec', 'DURATION', 'the crash-loop window, e.g. 15m or 1h', duration),
      liveness: update.option('liveness', 'agent|tcp:PORT|http:PORT/PATH|off', 'restart a guest that fails this check', liveness),
      'liveness-startup': update.option(
        'livenessStartupSec',
        'SEC',
        'misses before the first answer count only after this long (default 300)',
        duration,
      ),
      'guest-watchdog': update.option('guestWatchdog', 'on|off', 'the i6300esb watchdog: restart a guest that stops feeding it', (t, f) =>
        onOff(t, f) ? 'restart' : 'off',
      ),
      cpus: update.option('cpus', 'N', 'vCPUs; live up to --max-cpus', int),
      'max-cpus': update.option('maxCpus', 'N', 'vCPUs the VM boots able to hotplug', int),
      memory: update.option('memoryMiB', 'SIZE', 'memory; live through the balloon up to the boot size', memoryMiB),
      'max-memory': update.option('maxMemoryMiB', 'SIZE', 'the memory the VM boots with (room for the balloon)', memoryMiB),
      'cpu-weight': update.option('cpuWeight', 'N', 'CPU weight against other VMs, 1-10000, or default (100)', orNull('default', int)),
      'cpu-cap': update.option(
        'cpuCapPercent',
        'PERCENT',
        'at most this percent of one host core, e.g. 150, or off',
        orNull('off', percent),
      ),
      'io-bps': update.option('ioBps', 'N', 'disk bytes per second, e.g. 50M, or off', orNull('off', rate)),
      'io-iops': update.option('ioIops', 'N', 'disk operations per second, or off', orNull('off', int)),
      'disk-size': option('SIZE', 'grow the first disk to this size, e.g. 40G (never shrinks)', bytes),
      firmware: update.option('firmware', FIRMWARE, 'the firmware (a stopped VM only; UEFI variables start afresh)', firmware),
      tpm: update.option('tpm', 'on|off', 'a TPM 2.0 (a stopped VM only; turned on again, it is the same TPM)', onOff),
      'cpu-model': update.option('cpuModel', 'MODEL', `${CPU_MODEL_HELP} (a stopped VM only)`, text),
      'machine-type': update.option(
        'machineType',
        'TYPE',
        'the machine type, e.g. pc-q35-7.2 (a stopped VM only; the guest sees new hardware)',
        text,
      ),
      autostart: update.option('autostart', 'on|off', 'start the VM when the machine boots', onOff),
      order: update.option('autostartOrder', 'N', 'autostart group: lower starts first, stops last (default 0)', int),
      delay: update.option('autostartDelaySec', 'SEC', 'after it runs, the next autostart group waits this long', duration),
      'stop-timeout': update.option('stopTimeoutSec', 'SEC', 'at host shutdown, force it off after this long (default 60)', duration),
      evacuate: update.option(
        'evacuate',
        'migrate|restart|stop',
        'at corral host evacuate: migrate (default), restart on another host, or stop here',
        oneOf('migrate', 'restart', 'stop'),
      ),
      live: update.flag('live', 'apply to the running VM now, and fail instead of leaving a change pending'),
      ...HA_OPTIONS,
    },
    async run({ args: [name], o, api, host }) {
      const haGiven = Object.keys(HA_OPTIONS).some((k) => o[k as keyof typeof HA_OPTIONS] !== undefined);
      const settings = Object.keys(api).filter((k) => k !== 'live');
      if (!settings.length && !haGiven && o['disk-size'] === undefined) throw new UsageError('nothing to set; see corral help vm set');
      const c = await host();
      // the HA options edit one setting: merged into what the VM has
      const ha = haGiven ? mergeHa((await c.call('vm.get', { vm: name })).config.ha, o) : undefined;
      const updated =
        settings.length || ha ? await c.call('vm.update', { ...api, ...(ha ? { ha } : {}), vm: name } as ArgsIn<'vm.update'>) : null;
      let vm = updated ?? (await c.call('vm.get', { vm: name }));
      if (o['disk-size'] !== undefined) vm = await c.call('vm.resizeDisk', { vm: name, size: o['disk-size'] });
      out(`Updated "${vm.name}"${vm.pending.length ? `; at the next boot: ${vm.pending.join(', ')}` : ''}`);
      // why each change did not reach the running VM
      for (const n of updated?.notLive ?? []) out(`  ${n.field}: ${n.why}`);
      return 0;
    },
  }),
];
