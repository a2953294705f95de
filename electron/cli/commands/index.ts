// Every command, in the order of `corral help` and the usage text.
import type { Command } from '../table.js';
import { accountCommands } from './accounts.js';
import { clusterCommands } from './cluster.js';
import { consoleCommands } from './consoles.js';
import { haCommands } from './ha.js';
import { hostCommands } from './host.js';
import { networkCommands } from './network.js';
import { poolCommands } from './pool.js';
import { portableCommands } from './portable.js';
import { serveCommands } from './serve.js';
import { serviceCommands } from './service.js';
import { configCommands } from './vm-config.js';
import { lifecycleCommands } from './vm-lifecycle.js';
import { snapshotCommands } from './snapshots.js';
import { shareCommands } from './vm-share.js';
import { migrateCommands } from './migrate.js';
import { evacuateCommands } from './evacuate.js';

export const COMMANDS: readonly Command[] = [
  ...serveCommands,
  ...serviceCommands,
  ...configCommands,
  ...lifecycleCommands,
  ...snapshotCommands,
  ...portableCommands,
  ...shareCommands,
  ...migrateCommands,
  ...networkCommands,
  ...consoleCommands,
  ...poolCommands,
  ...hostCommands,
  ...evacuateCommands,
  ...clusterCommands,
  ...haCommands,
  ...accountCommands,
];
