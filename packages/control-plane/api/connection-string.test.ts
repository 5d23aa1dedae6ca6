import { ConnectError } from '@connectrpc/connect';
import { SslMode } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { parseConnectionString } from './connection-string.ts';

describe('connection strings', () => {
  it('parses a URI with percent-encoded credentials', () => {
    expect(
      parseConnectionString('postgresql://rep%40x:p%2Fw@db.example.com:6432/app?sslmode=verify-ca'),
    ).toEqual({
      host: 'db.example.com',
      port: 6432,
      database: 'app',
      username: 'rep@x',
      password: 'p/w',
      sslMode: SslMode.VERIFY_CA,
    });
  });

  it('parses an IPv6 URI host', () => {
    expect(parseConnectionString('postgres://u@[::1]/db').host).toBe('::1');
  });

  it('parses key=value pairs with quoting and escapes', () => {
    expect(
      parseConnectionString(
        "host=db.example.com port=5433 dbname='my db' user=rep password='it\\'s secret' application_name=x",
      ),
    ).toEqual({
      host: 'db.example.com',
      port: 5433,
      database: 'my db',
      username: 'rep',
      password: "it's secret",
    });
  });

  it('never quotes the string in its errors', () => {
    for (const bad of [
      'postgresql://u:TOPSECRET@h:123456/db',
      "host=h password='TOPSECRET",
      'host=h password=TOPSECRET sslmode=maybe',
      'host=h password=TOPSECRET bogus=1',
      'postgresql://u:TOPSECRET@h/db?sslkey=/k',
    ]) {
      let error: unknown;
      try {
        parseConnectionString(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).rawMessage).not.toContain('TOPSECRET');
    }
  });
});
