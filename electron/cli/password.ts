// Reading a password: from stdin for scripts (--password-stdin, its first line), else asked on the
// terminal twice without echo.
import readline from 'node:readline';
import { UsageError } from './table.js';

async function firstLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

function ask(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    process.stderr.write(question);
    // print nothing of what is typed
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => undefined;
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

export async function readPassword(fromStdin: boolean, what = 'Password'): Promise<string> {
  if (fromStdin) return await firstLine();
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask the password on: pipe it with --password-stdin');
  const a = await ask(`${what}: `);
  const b = await ask(`${what} (again): `);
  if (a !== b) throw new UsageError('the two passwords differ');
  return a;
}
