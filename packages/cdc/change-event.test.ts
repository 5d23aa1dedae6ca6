import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn, qualifiedName, quoteIdent } from './change-event.ts';

describe('LSN notation', () => {
  it('round-trips PostgreSQL X/Y notation through bigint', () => {
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('0/0'))).toBe('0/0');
    expect(formatLsn(parseLsn('FFFFFFFF/FFFFFFFF'))).toBe('FFFFFFFF/FFFFFFFF');
    expect(formatLsn(parseLsn('a/1b'))).toBe('A/1B');
  });

  it.each(['', '16', '16/', '/1', '1/2/3', '123456789/0', '0x1/2', ' 1/2', '1/2; drop table t'])(
    'refuses %j without echoing more than a short prefix',
    (text) => {
      expect(() => parseLsn(text)).toThrow(RangeError);
    },
  );
});

describe('identifiers', () => {
  it('quotes case, Unicode and embedded quotes so they survive', () => {
    expect(quoteIdent('Weird "Name"')).toBe('"Weird ""Name"""');
    expect(qualifiedName({ schema: 'Ünïcode', name: 'tbl' })).toBe('"Ünïcode"."tbl"');
  });

  it('refuses a NUL byte', () => {
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
  });
});
