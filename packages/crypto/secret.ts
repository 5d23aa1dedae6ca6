// A holder for secret values that can't be printed by accident, and the wipe helper for the Buffers that
// carry them. Strings can't be wiped (their copies linger until GC), so prefer Buffers for key material.
import { inspect } from 'node:util';

const REDACTED = '[REDACTED]' as const;

/**
 * Wraps a secret so that `String()`, template literals, `JSON.stringify`, `util.inspect` and pino all print
 * `[REDACTED]`. The value leaves only through `use`, `useOnce` or the greppable `reveal`.
 */
export class Secret<T> {
  #value: T | undefined;
  #wiped = false;

  private constructor(value: T) {
    this.#value = value;
  }

  static of<T>(value: T): Secret<T> {
    return new Secret(value);
  }

  /** True once `wipe` (or `useOnce`) has run; the value is gone for good. */
  get wiped(): boolean {
    return this.#wiped;
  }

  /** Lends the value to `fn` for the duration of the call; the Secret keeps it. */
  use<R>(fn: (value: T) => R): R {
    return fn(this.#current());
  }

  /**
   * Lends the value to `fn`, then wipes it — after the returned promise settles when `fn` is async, so the
   * bytes stay valid while the work that needs them is still running.
   */
  useOnce<R>(fn: (value: T) => R): R {
    let result: R;
    try {
      result = fn(this.#current());
    } catch (error) {
      this.wipe();
      throw error;
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).finally(() => this.wipe()) as R;
    }
    this.wipe();
    return result;
  }

  /** The escape hatch for APIs that need the raw value; kept explicit so every use can be found by grep. */
  reveal(): T {
    return this.#current();
  }

  /** Zero-fills a Buffer / Uint8Array / ArrayBuffer value and drops the reference; later use throws. */
  wipe(): void {
    const value = this.#value;
    if (value instanceof Uint8Array) value.fill(0);
    else if (value instanceof ArrayBuffer) new Uint8Array(value).fill(0);
    this.#value = undefined;
    this.#wiped = true;
  }

  toString(): typeof REDACTED {
    return REDACTED;
  }

  toJSON(): typeof REDACTED {
    return REDACTED;
  }

  [Symbol.toPrimitive](): typeof REDACTED {
    return REDACTED;
  }

  [inspect.custom](): typeof REDACTED {
    return REDACTED;
  }

  #current(): T {
    if (this.#wiped) throw new Error('this Secret has been wiped and can no longer be used');
    return this.#value as T;
  }
}

/** Zero-fills every given buffer; `undefined` entries are skipped so callers can wipe optional temporaries. */
export function wipe(...buffers: Array<Uint8Array | undefined>): void {
  for (const buffer of buffers) buffer?.fill(0);
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
