// Random and mutated API messages for fuzzing a host's transports, from a seeded PRNG so a
// failure can be replayed with the same seed. Nothing generated here is a valid call of a
// method that changes anything: every such call has at least one field of a wrong type, so
// fuzzing never creates, starts or deletes a VM. Read-only methods also get valid calls, to
// reach the handlers with odd but well-formed arguments.
import type { z } from 'zod';
import { methods, type MethodName } from '../../electron/core/api/contract';

/** mulberry32: small, fast and good enough to pick test inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One WebSocket frame: JSON-ish text, raw bytes in a text frame (maybe invalid UTF-8), or a binary frame. */
export type Frame = { kind: 'text'; data: string } | { kind: 'bytes'; data: Buffer } | { kind: 'binary'; data: Buffer };

/** Methods that change nothing, whatever their (valid) arguments. */
const READ_ONLY: MethodName[] = ['host.info', 'host.resources', 'vm.list', 'vm.get', 'vm.stats', 'events.list', 'serial.log'];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

/** JSON texts of every type, including ones JSON.parse turns into surprises (1e400 is Infinity). */
const SCALARS = [
  'null',
  'true',
  'false',
  '0',
  '-0',
  '-1',
  '0.5',
  '1e308',
  '-1e308',
  '1e400',
  '-1e400',
  '9007199254740993',
  '123456789012345678901234567890',
  '5e-324',
  '""',
  '" "',
  '"x"',
  '"\\u0000"',
  '"\\ud800"',
  '"../../../etc/passwd"',
  '"💥\\u202e"',
  '"%s%n%x"',
  '[]',
  '{}',
  '[null]',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
];

export class MessageFuzzer {
  readonly rand: () => number;
  private nextId = 1;
  /** (method, field) pairs not yet given a wrong value: each is visited once before repeats. */
  private sweep: Array<[MethodName, string]>;

  constructor(
    readonly seed: number,
    /** Names of VMs read-only calls may name (the fuzz must leave them as they are). */
    private readonly vmNames: string[] = [],
  ) {
    this.rand = prng(seed);
    this.sweep = (Object.keys(methods) as MethodName[]).flatMap((m) => Object.keys(shapeOf(m)).map((f) => [m, f] as [MethodName, string]));
  }

  /** A frame for the WebSocket. */
  frame(): Frame {
    const r = this.rand();
    if (r < 0.03) return { kind: 'binary', data: this.bytes(this.int(0, 64)) };
    if (r < 0.06) return { kind: 'bytes', data: this.invalidUtf8() };
    return { kind: 'text', data: this.text() };
  }

  /** One control-socket line's bytes, without its newline (never blank, never a newline inside). */
  line(): Buffer {
    const r = this.rand();
    let b: Buffer;
    if (r < 0.05) b = this.invalidUtf8();
    else if (r < 0.08) b = this.bytes(this.int(1, 64));
    else b = Buffer.from(this.text());
    b = Buffer.from(b.filter((c) => c !== 0x0a));
    // the host skips blank lines without an answer; keep every line one that is answered
    return b.toString('utf8').trim() === '' ? Buffer.from('x') : b;
  }

  /** A message as text: mostly a message of some kind, sometimes one of those mutated. */
  text(): string {
    const kinds = [
      () => this.anyValue(this.int(0, 4)),
      () => this.badEnvelope(),
      () => this.wrongField(),
      () => this.wrongField(),
      () => this.wrongField(),
      () => this.unknownMethod(),
      () => this.readOnlyCall(),
      () => this.readOnlyCall(),
      () => this.wrongArgsType(),
    ];
    // Some forms (an envelope with an extra key and `args: {}`), and rarely a mutation, make a
    // valid call of a method that changes something, such as `cluster.init`: never send those.
    for (;;) {
      const t = this.pick(kinds)();
      const m = this.rand() < 0.2 ? this.mutate(t) : t;
      if (!changesSomething(m)) return m;
    }
  }

  /** A text far beyond any sane message: over `bytes` long. */
  huge(bytes: number): string {
    return this.envelope(this.pick(Object.keys(methods)), `{"vm":"${'A'.repeat(bytes)}"}`);
  }

  /** Deeply nested JSON, as text (building it as a value would overflow JSON.stringify). */
  deep(depth: number): string {
    return this.rand() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  }

  private anyValue(depth: number): string {
    const r = this.rand();
    if (depth <= 0 || r < 0.4) return this.scalar();
    if (r < 0.5) return this.deep(this.int(100, 20_000));
    if (r < 0.75) return `[${Array.from({ length: this.int(0, 5) }, () => this.anyValue(depth - 1)).join(',')}]`;
    const keys = ['id', 'method', 'args', 'result', 'error', 'event', ...PROTO_KEYS, this.word()];
    return `{${Array.from({ length: this.int(0, 5) }, () => `${JSON.stringify(this.pick(keys))}:${this.anyValue(depth - 1)}`).join(',')}}`;
  }

  private scalar(): string {
    const r = this.rand();
    if (r < 0.1) return JSON.stringify('z'.repeat(this.int(10_000, 200_000)));
    if (r < 0.2) return String(this.rand() * 10 ** this.int(-20, 300) * (this.rand() < 0.5 ? -1 : 1));
    if (r < 0.3) return JSON.stringify(this.word());
    return this.pick(SCALARS);
  }

  /** {id, method, args} with one of them of the wrong type or missing. */
  private badEnvelope(): string {
    const method = JSON.stringify(this.pick(Object.keys(methods)));
    const id = String(this.nextId++);
    const bad = () => this.pick(SCALARS.filter((s) => !s.startsWith('"')));
    const forms = [
      `{"method":${method},"args":{}}`,
      `{"id":${this.pick(['null', '"1"', '1.5', '-1e400', '[]', '{}', 'true', '1e21'])},"method":${method},"args":{}}`,
      `{"id":${id},"args":{}}`,
      `{"id":${id},"method":${bad()},"args":{}}`,
      `{"id":${id},"method":${method},"args":${this.pick(['null', '[]', '"x"', '0', 'true', '[{}]'])}}`,
      `{"id":${id},"id":"dup","method":${method}}`,
      `{"id":${id},"method":${method},"args":{},"extra":${this.anyValue(1)}}`,
    ];
    return this.pick(forms);
  }

  /** A method of the contract with one field given a value of a type it does not take. */
  private wrongField(): string {
    const [method, field] = this.sweep.length ? this.sweep.splice(this.int(0, this.sweep.length - 1), 1)[0]! : this.pickField();
    const fieldSchema = shapeOf(method)[field]!;
    for (let tries = 0; tries < 20; tries++) {
      const raw = this.rand() < 0.1 ? this.deep(this.int(10, 5000)) : this.scalar();
      if (fieldSchema.safeParse(JSON.parse(raw)).success) continue;
      // the other fields valid-looking or random, but never a valid call as a whole
      const others = Object.keys(shapeOf(method))
        .filter((f) => f !== field && this.rand() < 0.3)
        .map((f) => `${JSON.stringify(f)}:${this.scalar()}`);
      const args = `{${[`${JSON.stringify(field)}:${raw}`, ...others].join(',')}}`;
      if (!isValidCall(method, args)) return this.envelope(method, args);
    }
    return this.envelope(method, `{${JSON.stringify(field)}:{"wrong":"type"}}`);
  }

  private pickField(): [MethodName, string] {
    const withFields = (Object.keys(methods) as MethodName[]).filter((m) => Object.keys(shapeOf(m)).length > 0);
    const m = this.pick(withFields);
    return [m, this.pick(Object.keys(shapeOf(m)))];
  }

  /** A method that is not in the contract, including names every object has. */
  private unknownMethod(): string {
    const names = [
      ...PROTO_KEYS,
      '',
      ' vm.list',
      'vm.list ',
      'VM.LIST',
      'vm.',
      '.',
      'vm.list\u0000',
      'x'.repeat(this.int(1, 5000)),
      this.word(),
    ];
    return this.envelope(this.pick(names), '{}');
  }

  /** A read-only method with arguments of the right shape, now and then naming a real VM. */
  private readOnlyCall(): string {
    const method = this.pick(READ_ONLY);
    const vm = this.vmNames.length && this.rand() < 0.5 ? this.pick(this.vmNames) : this.word();
    const args: Record<string, unknown> = {};
    if (method === 'vm.get' || method === 'vm.stats' || method === 'serial.log') args.vm = vm;
    if (method === 'vm.stats') args.range = this.pick(['hour', 'day']);
    if (method === 'serial.log') args.tailBytes = this.int(0, 16 * 1024 * 1024);
    if (method === 'events.list') Object.assign(args, this.rand() < 0.5 ? { vm } : {}, { limit: this.int(1, 10000) });
    if (this.rand() < 0.2) args[this.pick(PROTO_KEYS)] = 1; // strict: an unknown key is refused
    return this.envelope(method, JSON.stringify(args));
  }

  /** A method given args of a type that is not an object. */
  private wrongArgsType(): string {
    return this.envelope(this.pick(Object.keys(methods)), this.pick(SCALARS.filter((s) => s !== '{}' && !s.startsWith('{'))));
  }

  private envelope(method: string, argsText: string): string {
    return `{"id":${this.nextId++},"method":${JSON.stringify(method)},"args":${argsText}}`;
  }

  /** Flips, drops, duplicates or inserts a few characters. */
  private mutate(t: string): string {
    let s = t;
    for (let n = this.int(1, 3); n > 0 && s.length; n--) {
      const i = this.int(0, s.length - 1);
      const r = this.rand();
      if (r < 0.25) s = s.slice(0, i) + s.slice(i + 1);
      else if (r < 0.5)
        s = s.slice(0, i) + this.pick(['"', '{', '}', '[', ']', ',', ':', '\\', '0', '-', 'e', '\u0000', '\ud800']) + s.slice(i + 1);
      else if (r < 0.75) s = s.slice(0, i) + s.slice(i, i + this.int(1, 20)).repeat(2) + s.slice(i + 1);
      else s = s.slice(0, i);
    }
    return s;
  }

  private invalidUtf8(): Buffer {
    const bad = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80]];
    return Buffer.concat([
      Buffer.from(`{"id":${this.nextId++},"method":"vm.list","args":{"x":"`),
      Buffer.from(this.pick(bad)),
      Buffer.from('"}}'),
    ]);
  }

  private bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(0, 255)));
  }

  private word(): string {
    const alphabet = 'abcXYZ019-_. /\\"\'\u00e9\u4e2d\ud83d\ude00\t\r';
    return Array.from({ length: this.int(0, 24) }, () => alphabet[this.int(0, alphabet.length - 1)]).join('');
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }
}

function shapeOf(method: MethodName): Record<string, z.ZodType> {
  return (methods[method].args as unknown as z.ZodObject).shape as Record<string, z.ZodType>;
}

/** Whether a message text is a valid call of a method that changes something. */
export function changesSomething(text: string): boolean {
  try {
    const msg = JSON.parse(text) as { method?: unknown; args?: unknown };
    return (
      typeof msg?.method === 'string' &&
      Object.hasOwn(methods, msg.method) &&
      isValidCall(msg.method as MethodName, JSON.stringify(msg.args ?? {}))
    );
  } catch {
    return false;
  }
}

/** Whether the dispatcher would hand these args to a method that changes something. */
function isValidCall(method: MethodName, argsText: string): boolean {
  if (READ_ONLY.includes(method)) return false;
  let args: unknown;
  try {
    args = JSON.parse(argsText);
  } catch {
    return false;
  }
  return (methods[method].args as unknown as z.ZodObject).strict().safeParse(args).success;
}
