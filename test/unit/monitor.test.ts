import { describe, expect, it } from 'vitest';
import { MONITOR_COMMANDS } from '../../electron/core/api/rules';
import { checkMonitorCommand, MONITOR_HELP } from '../../electron/core/consoles/monitor';
import { TicketBook } from '../../electron/core/consoles/tickets';

describe('read-only monitor allowlist', () => {
  it.each(['info status', 'info  block', 'i cpus', 'info registers -a'])('allows %j', (c) => {
    expect(checkMonitorCommand(c)).toHaveProperty('command');
  });
  it.each([
    'quit',
    'info',
    'info shadow',
    'info status; quit',
    'info status\nquit',
    'savevm x',
    'dump-guest-memory /etc/x',
    'info block /etc/passwd',
  ])('refuses %j', (c) => {
    expect(checkMonitorCommand(c)).toHaveProperty('error');
  });
  it('allows exactly the shared list that the page suggests', () => {
    for (const c of MONITOR_COMMANDS) expect(checkMonitorCommand(c)).toEqual({ command: c });
    expect(checkMonitorCommand('help')).toEqual({ error: MONITOR_HELP });
    expect(MONITOR_HELP).toBe(`Allowed: ${MONITOR_COMMANDS.join(', ')}`);
  });
});

describe('console tickets', () => {
  it('are one-shot, per VM, and expire', () => {
    const book = new TicketBook();
    const t = book.issue('vm1', 1000);
    expect(book.redeem(t, 'vm2', 1001)).toBe(false);
    expect(book.redeem(t, 'vm1', 1001)).toBe(false); // spent by the wrong-VM attempt
    const u = book.issue('vm1', 1000);
    expect(book.redeem(u, 'vm1', 1000 + 31_000)).toBe(false);
    const v = book.issue('vm1', 1000);
    expect(book.redeem(v, 'vm1', 1500)).toBe(true);
    expect(book.redeem(v, 'vm1', 1501)).toBe(false);
  });
});
