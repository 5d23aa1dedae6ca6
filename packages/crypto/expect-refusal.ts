// Test support (not exported): asserts that an operation fails with the intended error code and that no
// secret appears anywhere a log or a caller could see the error — message, String(), inspect with causes.
import { inspect } from 'node:util';
import { expect } from 'vitest';

interface CodedError extends Error {
  readonly code: string;
}

export async function expectRefusal(
  operation: () => unknown,
  errorClass: abstract new (...args: never[]) => CodedError,
  code: string,
  secrets: ReadonlyArray<string | Uint8Array>,
): Promise<CodedError> {
  let caught: unknown;
  try {
    await operation();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a ${errorClass.name} with code ${code}`).toBeInstanceOf(errorClass);
  const error = caught as CodedError;
  expect(error.code).toBe(code);
  const views = [error.message, String(error), inspect(error, { depth: 5 }), JSON.stringify(error)];
  for (const secret of secrets) {
    for (const form of secretForms(secret)) {
      for (const view of views)
        expect(view.includes(form), `error output contains a secret (${code})`).toBe(false);
    }
  }
  return error;
}

/** The ways a secret could be rendered: as given, hex (both cases), base64, and a 16-char prefix. */
function secretForms(secret: string | Uint8Array): string[] {
  if (typeof secret === 'string') {
    return [secret, secret.slice(0, 16), secret.toUpperCase()].filter((form) => form.length >= 8);
  }
  const buffer = Buffer.from(secret);
  if (buffer.length < 4) return [];
  const hex = buffer.toString('hex');
  return [hex, hex.toUpperCase(), buffer.toString('base64'), buffer.toString('latin1')].filter(
    (form) => form.length >= 8,
  );
}
