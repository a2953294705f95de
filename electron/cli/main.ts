// `corral`: runs the headless host (`corral serve`) or talks to the running host over its
// control socket. The commands are a table (commands/); this file only runs one. Failures print
// one line and exit non-zero (2 for usage errors).
import path from 'node:path';
import { dataLayout, defaultDataDir } from '../core/paths.js';
import { ControlClient } from './client.js';
import { COMMANDS } from './commands/index.js';
import { parse, UsageError } from './table.js';

export async function main(argv: string[]): Promise<number> {
  let connecting: Promise<ControlClient> | undefined;
  try {
    const p = parse(COMMANDS, argv);
    if (p.do === 'print') {
      process.stdout.write(p.text + '\n');
      return p.code;
    }
    if (p.do === 'version') {
      const { VERSION } = await import('../core/version.js');
      process.stdout.write(`corral ${VERSION}\n`);
      return 0;
    }
    const dataDir = p.data ? path.resolve(p.data) : defaultDataDir();
    const host = () => (connecting ??= ControlClient.connect(dataLayout(dataDir).controlSocket, dataDir));
    return await p.cmd.run({ args: p.args, o: p.values, api: p.api, dataDir, host });
  } catch (err) {
    process.stderr.write(`corral: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    (await connecting?.catch(() => undefined))?.close();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
