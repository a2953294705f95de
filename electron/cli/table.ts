// The CLI as a table: each command is one entry (its words, positional arguments, options and run
// function), and usage, help, option parsing and every check are generated from the table, so adding
// an option is one edit in one place.
import { parseArgs } from 'node:util';
import type { ControlClient } from './client.js';

/** A mistake in the command line: exit status 2. */
export class UsageError extends Error {}

/** Turns an option's text into its value; throws a UsageError that names the flag. */
export type Parse<T> = (text: string, flag: string) => T;

export interface Opt<T = unknown> {
  /** The value's placeholder (SIZE, on|off); without one the option is a switch, true when given. */
  value?: string;
  help: string;
  parse: Parse<T>;
  /** May be given more than once; the value is then the list. */
  multiple?: boolean;
  /** The API argument that gets the value as is (see fields()). */
  to?: string;
  short?: string;
}

export type Opts = Record<string, Opt>;
type ValueOf<O> = O extends Opt<infer T> ? (O extends { multiple: true } ? T[] : T) : never;
export type Values<O extends Opts> = { [K in keyof O]?: ValueOf<O[K]> };

export interface Ctx<A extends readonly string[], O extends Opts> {
  args: { [I in keyof A]: string };
  o: Values<O>;
  /** The values of the options that have `to`, by API argument. */
  api: Record<string, unknown>;
  dataDir: string;
  /** The host that owns dataDir, connected on first use (so that usage errors need no host). */
  host(): Promise<ControlClient>;
}

export interface Command<A extends readonly string[] = readonly string[], O extends Opts = Opts> {
  /** What the user types, e.g. "vm create". */
  words: string;
  /** Positional placeholders, e.g. ["NAME", "FILE.png"]: exactly these many are required. */
  args: A;
  summary: string;
  options: O;
  run(ctx: Ctx<A, O>): Promise<number>;
}

/** Declares a command; its run function sees typed positionals and option values. */
export function command<const A extends readonly string[], O extends Opts>(c: Command<A, O>): Command {
  return c;
}

/** An option the run function reads itself (one that sets an API argument is declared with fields()). */
export function option<T>(value: string, help: string, parse: Parse<T>): Opt<T> {
  return { value, help, parse };
}

export function flag(help: string): Opt<true> {
  return { help, parse: () => true };
}

/** Options that set one API argument of type A: the compiler checks the argument's name and type. */
export function fields<A>() {
  type F<K extends keyof A> = Exclude<A[K], undefined>;
  return {
    option: <K extends keyof A & string>(to: K, value: string, help: string, parse: Parse<F<K>>): Opt<F<K>> => ({ value, help, parse, to }),
    many: <K extends keyof A & string>(
      to: K,
      value: string,
      help: string,
      parse: Parse<F<K> extends readonly (infer E)[] ? E : never>,
    ) => ({
      value,
      help,
      parse,
      to,
      multiple: true as const,
    }),
    flag: <K extends keyof A & string>(to: K & (true extends F<K> ? K : never), help: string): Opt<true> => ({
      help,
      parse: () => true,
      to,
    }),
  };
}

/** Accepted by every command. */
export const GLOBAL: Opts = {
  data: option('DIR', 'the data dir (default $CORRAL_DATA, else $XDG_DATA_HOME/corral)', (t) => t),
  help: { ...flag('show help'), short: 'h' },
  version: flag('print the version'),
};

const DATA_NOTE = 'The data dir defaults to $CORRAL_DATA, else $XDG_DATA_HOME/corral (~/.local/share/corral).';

export type Parsed =
  | { do: 'print'; text: string; code: number }
  | { do: 'version' }
  | { do: 'run'; cmd: Command; args: string[]; values: Record<string, unknown>; api: Record<string, unknown>; data?: string };

function config(opts: Opts) {
  return Object.fromEntries(
    Object.entries(opts).map(([name, o]) => [
      name,
      { type: o.value ? ('string' as const) : ('boolean' as const), multiple: Boolean(o.multiple), ...(o.short ? { short: o.short } : {}) },
    ]),
  );
}

/** Every option of every command (one name means one thing everywhere; a unit test checks). */
export function allOptions(table: readonly Command[]): Opts {
  return Object.assign({}, GLOBAL, ...table.map((c) => c.options)) as Opts;
}

/** The command whose words start `pos` (the longest match). */
function find(table: readonly Command[], pos: string[]): Command | undefined {
  const matches = table.filter((c) => c.words.split(' ').every((w, i) => pos[i] === w));
  return matches.sort((a, b) => b.words.length - a.words.length)[0];
}

function unknownCommand(table: readonly Command[], pos: string[]): UsageError {
  const group = table.some((c) => c.words.startsWith(`${pos[0]} `)) ? pos[0] : undefined;
  const shown = group ? pos.slice(0, 2) : pos.slice(0, 1);
  return new UsageError(`unknown command "${shown.join(' ')}"; see corral help${group ? ` ${group}` : ''}`);
}

export function parse(table: readonly Command[], argv: string[]): Parsed {
  const all = allOptions(table);
  // A first, lenient pass with every option finds the command, so that the errors can be about it.
  const loose = parseArgs({ args: argv, options: config(all), allowPositionals: true, strict: false, tokens: true });
  const pos = loose.positionals;
  const given = loose.tokens.flatMap((t) => (t.kind === 'option' ? [t] : []));
  const asked = (name: string) => given.some((t) => t.name === name);
  if (pos[0] === 'help') return { do: 'print', text: help(table, pos.slice(1)), code: 0 };
  if (asked('version')) return { do: 'version' };
  if (!pos.length) return { do: 'print', text: usage(table), code: asked('help') ? 0 : 2 };
  const cmd = find(table, pos);
  if (!cmd && asked('help')) return { do: 'print', text: help(table, pos.slice(0, 2)), code: 0 }; // corral vm --help
  if (!cmd) throw unknownCommand(table, pos);
  const see = `; see corral help ${cmd.words}`;
  for (const t of given) {
    if (t.name in GLOBAL || t.name in cmd.options) continue;
    throw new UsageError(
      t.name in all ? `option --${t.name} does not apply to "corral ${cmd.words}"${see}` : `Unknown option '${t.rawName}'${see}`,
    );
  }

  let strict;
  try {
    strict = parseArgs({ args: argv, options: config({ ...GLOBAL, ...cmd.options }), allowPositionals: true, strict: true });
  } catch (err) {
    // one line: parseArgs appends advice about positionals that does not fit our surface
    throw new UsageError((err as Error).message.split('\n')[0]!.replace(/\.( To specify a positional.*)?$/, '') + see);
  }
  const raw = strict.values as Record<string, string | string[] | boolean | undefined>;
  if (raw.help) return { do: 'print', text: commandHelp(cmd), code: 0 };

  const args = pos.slice(cmd.words.split(' ').length);
  if (args.length < cmd.args.length) throw new UsageError(`"corral ${cmd.words}" needs ${cmd.args.slice(args.length).join(' ')}${see}`);
  if (args.length > cmd.args.length) {
    const quote = cmd.args.includes('NAME') ? ' (quote names with spaces)' : '';
    throw new UsageError(`unexpected argument "${args[cmd.args.length]}"${quote}${see}`);
  }

  const values: Record<string, unknown> = {};
  const api: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(cmd.options)) {
    const text = raw[name];
    if (text === undefined) continue;
    const flagName = `--${name}`;
    const value = Array.isArray(text) ? text.map((t) => o.parse(t, flagName)) : o.parse(String(text), flagName);
    values[name] = value;
    if (o.to) api[o.to] = value;
  }
  return { do: 'run', cmd, args, values, api, data: raw.data as string | undefined };
}

// ---- usage and help ------------------------------------------------------------------------

const WIDTH = 110;

function optionUsage(name: string, o: Opt): string {
  return o.value ? `[--${name} ${o.value}]${o.multiple ? '...' : ''}` : `[--${name}]`;
}

/** One synopsis per command, wrapped; neighbours that differ only in their last word share one line. */
export function synopsis(table: readonly Command[]): string[] {
  const merged: Array<{ words: string[]; tail: string[] }> = [];
  for (const c of table) {
    const words = c.words.split(' ');
    const tail = [...c.args, ...Object.entries(c.options).map(([n, o]) => optionUsage(n, o))];
    const prev = merged.at(-1);
    if (prev && words.length === 2 && prev.words[0] === words[0] && prev.tail.join(' ') === tail.join(' ')) {
      prev.words[1] += `|${words[1]}`;
    } else merged.push({ words, tail });
  }
  return merged.flatMap(({ words, tail }) => wrap(['corral', '[--data DIR]', words.join(' '), ...tail]));
}

function wrap(parts: string[]): string[] {
  const lines = [parts[0]!];
  for (const p of parts.slice(1)) {
    if (lines.at(-1)!.length + 1 + p.length > WIDTH) lines.push(`${' '.repeat('corral'.length)} ${p}`);
    else lines[lines.length - 1] += ` ${p}`;
  }
  return lines;
}

/** Two columns; a left side wider than `max` puts its text on the next line. */
function columns(rows: Array<[string, string]>, max = 30): string[] {
  const width = Math.min(max, Math.max(...rows.map(([l]) => l.length)));
  return rows.flatMap(([l, r]) => (l.length > width ? [`  ${l}`, `  ${' '.repeat(width)}  ${r}`] : [`  ${l.padEnd(width)}  ${r}`]));
}

/** `corral` and `corral --help`: every command with all its options. */
export function usage(table: readonly Command[]): string {
  return ['Usage:', ...synopsis(table).map((l) => `  ${l}`), '', 'See corral help for what each command does.', DATA_NOTE].join('\n');
}

/** `corral help [GROUP|COMMAND]`: the commands with a one-line summary, or one command in full. */
export function help(table: readonly Command[], topic: string[]): string {
  if (!topic.length) return list(table);
  const cmd = find(table, topic);
  if (cmd && cmd.words.split(' ').length === topic.length) return commandHelp(cmd);
  const group = table.filter((c) => c.words.startsWith(`${topic[0]} `));
  if (group.length && topic.length === 1) return list(group);
  throw unknownCommand(table, topic);
}

function list(table: readonly Command[]): string {
  return [
    'Usage: corral [--data DIR] COMMAND [ARGS] [OPTIONS]',
    '',
    'Commands:',
    ...columns(table.map((c) => [[c.words, ...c.args].join(' '), c.summary])),
    '',
    'corral help COMMAND (or corral COMMAND --help) shows the options of a command.',
    DATA_NOTE,
  ].join('\n');
}

export function commandHelp(cmd: Command): string {
  const opts = Object.entries({ ...cmd.options, data: GLOBAL.data });
  return [
    `Usage: ${synopsis([cmd]).join('\n       ')}`,
    '',
    `${cmd.summary}.`,
    '',
    'Options:',
    ...columns(opts.map(([n, o]) => [`--${n}${o.value ? ` ${o.value}` : ''}`, `${o.help}${o.multiple ? ' (repeatable)' : ''}`])),
  ].join('\n');
}
