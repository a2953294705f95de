// Every command, in the order of `corral help` and the usage text.
import type { Command } from '../table.js';
import { accountCommands } from './accounts.js';
import { consoleCommands } from './consoles.js';
import { hostCommands } from './host.js';
import { networkCommands } from './network.js';
import { poolCommands } from './pool.js';
import { serveCommands } from './serve.js';
import { serviceCommands } from './service.js';
import { configCommands } from './vm-config.js';
import { lifecycleCommands } from './vm-lifecycle.js';

export const COMMANDS: readonly Command[] = [
  ...serveCommands,
  ...serviceCommands,
  ...configCommands,
  ...lifecycleCommands,
  ...networkCommands,
  ...consoleCommands,
  ...poolCommands,
  ...hostCommands,
  ...accountCommands,
];
