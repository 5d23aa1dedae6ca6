import { describe, expect, it } from 'vitest';
import { expectRefusal } from './expect-refusal.ts';

class CodedError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

const SECRET = 'f00dfeedcafebeef0123456789abcdef';

describe('the hostile-input assertion itself', () => {
  it('fails when the message, the cause or a hex rendering shows the secret', async () => {
    const leaks = [
      new CodedError('BAD', `bad key ${SECRET}`),
      new CodedError('BAD', 'bad key', { cause: new Error(`inner ${SECRET.toUpperCase()}`) }),
      new CodedError('BAD', `bad key ${Buffer.from(SECRET).toString('hex')}`),
    ];
    for (const leak of leaks) {
      await expect(
        expectRefusal(
          () => {
            throw leak;
          },
          CodedError,
          'BAD',
          [SECRET, Buffer.from(SECRET)],
        ),
      ).rejects.toThrow(/contains a secret/);
    }
  });

  it('fails on the wrong code, the wrong class or no error at all', async () => {
    const fail = (error: unknown) => () => {
      throw error;
    };
    await expect(expectRefusal(fail(new CodedError('OTHER', 'x')), CodedError, 'BAD', [])).rejects.toThrow();
    await expect(expectRefusal(fail(new Error('x')), CodedError, 'BAD', [])).rejects.toThrow();
    await expect(expectRefusal(() => 1, CodedError, 'BAD', [])).rejects.toThrow();
  });
});
