// Everything the page knows about one host, built on one API client: its VMs, its figures,
// the host's facts, consoles, terminals, thumbnails and the link's state. App.svelte makes
// one for the host this window talks to and hands it down with Svelte context, so components
// ask `useHost()` for the stores of the host they belong to (never a module-wide store): a
// window could then show several hosts side by side, each in its own context.
//
// What belongs to the window rather than to a host stays module-wide: toasts, the chosen tab
// (ui), the ticking clock.
import { createContext } from 'svelte';
import type { ApiClient } from './api';
import { ClusterStore } from './cluster.svelte';
import { Connection } from './connection.svelte';
import { ConsoleLayouts } from './consoles.svelte';
import { Host } from './host.svelte';
import { Me } from './me.svelte';
import { Monitors } from './monitor.svelte';
import { MoveStore } from './moves.svelte';
import { startNotifications } from './notifications';
import { Stats } from './stats.svelte';
import { Terminals } from './terminals.svelte';
import { Thumbnails } from './thumbnails.svelte';
import { VmStore } from './vms.svelte';

export class HostSession {
  /** The connection every store of this host uses (for calls that belong to no store). */
  readonly api: ApiClient;
  readonly connection: Connection;
  readonly vms: VmStore;
  /** The host's facts (QEMU, settings, what it allows) and capacity. */
  readonly host: Host;
  readonly stats: Stats;
  readonly thumbnails: Thumbnails;
  readonly terminals: Terminals;
  readonly consoles: ConsoleLayouts;
  readonly monitors: Monitors;
  /** Who this window acts as, and what that role may do. */
  readonly me: Me;
  /** The cluster this host is in (its hosts, their room and health), if any. */
  readonly cluster: ClusterStore;
  /** VMs moving to other hosts of the cluster, and host evacuations. */
  readonly moves: MoveStore;
  #started = false;

  constructor(api: ApiClient) {
    this.api = api;
    this.connection = new Connection(api);
    this.vms = new VmStore(api);
    this.host = new Host(api);
    this.stats = new Stats(api, this.host);
    this.thumbnails = new Thumbnails(api);
    this.terminals = new Terminals(api);
    this.consoles = new ConsoleLayouts();
    this.monitors = new Monitors(api);
    this.me = new Me(api);
    this.cluster = new ClusterStore(api);
    this.moves = new MoveStore(api);
  }

  /** Connects, and shows this host's notifications from then on. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    startNotifications(this.api, this.vms);
    this.api.start();
  }
}

const [getHost, setHost] = createContext<HostSession>();

/** Makes `session` the host of this component and everything inside it. */
export function provideHost(session: HostSession): HostSession {
  return setHost(session);
}

/** The host this component belongs to (call while the component initializes). */
export function useHost(): HostSession {
  return getHost();
}
