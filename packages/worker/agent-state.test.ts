import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AgentStateMachine } from './agent-state.ts';

function machine() {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  return { states: new AgentStateMachine(logger), lines };
}

describe('the agent state machine', () => {
  it('walks initialized → running → draining → stopping → stopped, logging each transition', () => {
    const { states, lines } = machine();
    states.set('running', 'connected');
    states.set('draining', 'SIGTERM');
    states.set('stopping', 'drained');
    states.set('stopped', 'done');
    expect(states.state).toBe('stopped');
    expect(lines.map((line) => JSON.parse(line)).map(({ from, to }) => `${from}→${to}`)).toEqual([
      'initialized→running',
      'running→draining',
      'draining→stopping',
      'stopping→stopped',
    ]);
  });

  it.each([
    ['initialized', 'draining'],
    ['initialized', 'stopped'],
    ['running', 'initialized'],
    ['running', 'stopped'],
  ] as const)('refuses the illegal transition %s → %s', (from, to) => {
    const { states } = machine();
    if (from === 'running') states.set('running', 'setup');
    expect(() => states.set(to, 'test')).toThrow(`illegal agent transition ${from} → ${to}`);
    expect(states.state).toBe(from);
  });

  it('allows nothing after stopped or failed', () => {
    const { states } = machine();
    states.fail(new Error('boom'));
    expect(() => states.set('running', 'again')).toThrow(/illegal/);
  });

  it('reports the first error when failures pile up', async () => {
    const { states } = machine();
    states.set('running', 'connected');
    const done = states.until('stopped', 'failed');
    states.fail(new Error('first'));
    states.fail(new Error('second'));
    expect(await done).toBe('failed');
    expect(states.error?.message).toBe('first');
  });
});
