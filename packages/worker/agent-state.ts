// The agent's life cycle. Every transition goes through `AgentStateMachine.set`, which logs it and refuses
// illegal moves; on failure the first error is the one kept and reported.
import type { Logger } from 'pino';

export type AgentState =
  /** Process started; not yet registered or connected. */
  | 'initialized'
  /** Heartbeating, pulling and running jobs. */
  | 'running'
  /** Finishing in-flight batches and releasing leases; pulls nothing new. */
  | 'draining'
  /** Closing connections. */
  | 'stopping'
  /** Done; the process may exit 0. */
  | 'stopped'
  /** Stopped on an error it could not recover from; the process exits non-zero. */
  | 'failed';

const legal: Record<AgentState, readonly AgentState[]> = {
  initialized: ['running', 'stopping', 'failed'],
  running: ['draining', 'stopping', 'failed'],
  draining: ['stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

export class AgentStateMachine {
  #state: AgentState = 'initialized';
  #firstError: Error | undefined;
  readonly #logger: Logger;
  readonly #listeners = new Set<(state: AgentState) => void>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get state(): AgentState {
    return this.#state;
  }

  /** The error that sent the agent to `failed` (the first one, if several happened). */
  get error(): Error | undefined {
    return this.#firstError;
  }

  set(next: AgentState, reason: string): void {
    if (!legal[this.#state].includes(next)) {
      throw new Error(`illegal agent transition ${this.#state} → ${next} (${reason})`);
    }
    this.#logger.info({ from: this.#state, to: next, reason }, 'agent state');
    this.#state = next;
    for (const listener of this.#listeners) listener(next);
  }

  /** Moves to `failed` from any live state, keeping the first error. */
  fail(error: Error): void {
    this.#firstError ??= error;
    if (this.#state === 'failed' || this.#state === 'stopped') return;
    this.set('failed', error.message);
  }

  /** Resolves when the agent reaches one of `states`. */
  until(...states: AgentState[]): Promise<AgentState> {
    if (states.includes(this.#state)) return Promise.resolve(this.#state);
    return new Promise((resolve) => {
      const listener = (state: AgentState) => {
        if (!states.includes(state)) return;
        this.#listeners.delete(listener);
        resolve(state);
      };
      this.#listeners.add(listener);
    });
  }
}
