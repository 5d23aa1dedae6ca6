// `sluice datasource update`: how flags merge into the stored configuration (only the fields given change,
// secrets are sent only when given), which flags move the connection target, and the refusals in flag
// spelling — before any call, and when the server answers with its own API field names.
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  DatasourceKind,
  DatasourceSchema,
  PostgresDatasourceSchema,
  SslMode,
  StarRocksDatasourceSchema,
} from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { CliError, describeFailure } from './cli-error.ts';
import {
  explainUpdateRefusal,
  planDatasourceUpdate,
  requirePasswordForTarget,
} from './commands/datasource.ts';
import { runCli } from './sluice-command.ts';

const source = create(DatasourceSchema, {
  id: '00000000-0000-4000-8000-000000000001',
  name: 'app',
  kind: DatasourceKind.POSTGRES,
  config: {
    case: 'postgres',
    value: create(PostgresDatasourceSchema, {
      host: 'db1.internal',
      port: 5432,
      database: 'app',
      username: 'sluice_repl',
      sslMode: SslMode.VERIFY_FULL,
      hasPassword: true,
      hasSslRootCert: true,
    }),
  },
});

const sink = create(DatasourceSchema, {
  id: '00000000-0000-4000-8000-000000000002',
  name: 'warehouse',
  kind: DatasourceKind.STARROCKS,
  config: {
    case: 'starrocks',
    value: create(StarRocksDatasourceSchema, {
      feHost: 'sr.internal',
      httpPort: 8030,
      mysqlPort: 9030,
      username: 'sluice',
      database: 'analytics',
      hasPassword: true,
    }),
  },
});

function refusal(run: () => unknown): { exitCode: number; message: string } {
  try {
    run();
  } catch (error) {
    return describeFailure(error);
  }
  throw new Error('expected a refusal');
}

async function sluice(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const stream = (into: string[]) =>
    ({
      write: (text: string) => {
        into.push(text);
        return true;
      },
      isTTY: false,
    }) as unknown as NodeJS.WriteStream;
  const code = await runCli(args, { stdout: stream([]), stderr: stream(err), env: {} });
  return { code, err: err.join('') };
}

describe('datasource update: merging flags into the stored datasource', () => {
  it('keeps every field not given and sends no secret that was not given', () => {
    const plan = planDatasourceUpdate(source, { database: 'app2' }, {});
    expect(plan.spec).toEqual({
      case: 'postgres',
      value: {
        host: 'db1.internal',
        port: 5432,
        database: 'app2',
        username: 'sluice_repl',
        sslMode: SslMode.VERIFY_FULL,
      },
    });
    expect(plan.changes).toEqual([{ field: 'database', from: 'app', to: 'app2' }]);
    expect(plan.targetFlags).toEqual(['--database']);
    expect(plan.name).toBeUndefined();
  });

  it('sends no configuration for a rename alone, and nothing for values equal to the stored ones', () => {
    const rename = planDatasourceUpdate(source, { rename: 'app-main' }, {});
    expect(rename.spec).toBeUndefined();
    expect(rename.name).toBe('app-main');
    const same = planDatasourceUpdate(source, { host: 'db1.internal', port: '5432' }, {});
    expect(same.changes).toEqual([]);
    expect(same.targetFlags).toEqual([]);
  });

  it('clears the password with --no-password and sends a new CA only when a file is given', () => {
    const plan = planDatasourceUpdate(
      source,
      { 'no-password': true, 'ssl-root-cert': 'ca.crt' },
      {
        sslRootCert: 'PEM',
      },
    );
    expect(plan.spec?.value).toMatchObject({ password: '', sslRootCert: 'PEM' });
    expect(plan.secretFlags).toEqual(['--no-password', '--ssl-root-cert']);
  });

  it('maps StarRocks switches both ways; the database is not part of the target', () => {
    const plan = planDatasourceUpdate(sink, { ssl: true, database: 'v2', 'http-port': '8443' }, {});
    expect(plan.spec).toEqual({
      case: 'starrocks',
      value: {
        feHost: 'sr.internal',
        httpPort: 8443,
        mysqlPort: 9030,
        username: 'sluice',
        database: 'v2',
        sslEnabled: true,
        allowPlaintextBeRedirect: false,
        rewriteLoopbackRedirect: false,
      },
    });
    expect(plan.targetFlags).toEqual(['--http-port', '--ssl']);
    expect(plan.changes).toContainEqual({ field: 'ssl', from: 'off', to: 'on' });
  });

  it.each([
    [{ 'fe-host': 'x' }, '--fe-host is not for a PostgreSQL source; app is a PostgreSQL source'],
    [
      { 'ssl-mode': 'strict' },
      '--ssl-mode must be one of disable, allow, prefer, require, verify-ca, verify-full',
    ],
    [{ port: '70000' }, '--port must be a whole number from 1 to 65535'],
    [{ ssl: true, 'no-ssl': true }, '--ssl and --no-ssl contradict each other'],
    [{ 'no-password': true, 'password-file': 'pw' }, '--no-password contradicts --password-file'],
  ])('refuses %j as a usage error (exit 2)', (flags, message) => {
    const failure = refusal(() => planDatasourceUpdate(source, flags, {}));
    expect(failure.exitCode).toBe(2);
    expect(failure.message).toContain(message);
  });
});

describe('datasource update: a moved target needs the password again', () => {
  it('names the flags that move it and the flag to add, before anything is sent (exit 5)', () => {
    const flags = { host: 'db2.internal', port: '6432' };
    const plan = planDatasourceUpdate(source, flags, {});
    const failure = refusal(() => requirePasswordForTarget(source, plan, flags));
    expect(failure.exitCode).toBe(5);
    expect(failure.message).toBe(
      'changing --host, --port of datasource app needs its password again: add --password-file FILE ' +
        '(or --prompt-password; --no-password clears it). A stored password is only sent to the target it was ' +
        'entered for',
    );
  });

  it('lets the update through with --password-file, --no-password, or when no password is stored', () => {
    for (const extra of [{ 'password-file': 'pw' }, { 'no-password': true }]) {
      const flags = { host: 'db2.internal', ...extra };
      expect(() =>
        requirePasswordForTarget(source, planDatasourceUpdate(source, flags, {}), flags),
      ).not.toThrow();
    }
    const bare = create(DatasourceSchema, source);
    if (bare.config.case === 'postgres') bare.config.value.hasPassword = false;
    const flags = { host: 'db2.internal' };
    expect(() => requirePasswordForTarget(bare, planDatasourceUpdate(bare, flags, {}), flags)).not.toThrow();
  });

  it("rewrites the server's refusal from API field names into flag spelling (exit 5)", () => {
    const server = new ConnectError(
      'changing starrocks.ssl_enabled, starrocks.ca_cert of datasource "warehouse" requires its password ' +
        'again in the same update (starrocks.password; sluice datasource update: add --password-file), or ' +
        'clearing it: a stored password is only ever sent to the target it was entered for',
      Code.FailedPrecondition,
    );
    const explained = explainUpdateRefusal('warehouse', server);
    expect(explained).toBeInstanceOf(CliError);
    expect(describeFailure(explained)).toEqual({
      exitCode: 5,
      message: expect.stringMatching(
        /^changing --ssl\/--no-ssl, --ssl-ca-cert of datasource warehouse needs its password again: add --password-file FILE/,
      ),
    });
  });

  it('turns a refused sslmode into the flags to use (exit 3), and leaves other errors alone', () => {
    const server = new ConnectError(
      'postgres.ssl_mode require is below verify-full (the server would not be verified before it is sent ' +
        'the password); only an admin may choose it. Use verify-full with postgres.ssl_root_cert, or ask an admin',
      Code.PermissionDenied,
    );
    const failure = describeFailure(explainUpdateRefusal('app', server));
    expect(failure.exitCode).toBe(3);
    expect(failure.message).toContain('--ssl-mode require is below verify-full');
    expect(failure.message).toContain('--ssl-mode verify-full with --ssl-root-cert FILE');
    const role = new ConnectError('operator role required', Code.PermissionDenied);
    expect(explainUpdateRefusal('app', role)).toBe(role);
  });
});

describe('datasource update: the command line', () => {
  it('refuses contradictions before connecting (exit 2) and takes no password argument', async () => {
    expect(await sluice(['datasource', 'update', 'app', '--ssl', '--no-ssl'])).toEqual({
      code: 2,
      err: expect.stringContaining('--ssl and --no-ssl contradict each other'),
    });
    expect((await sluice(['datasource', 'update', 'app', '--password', 'hunter2'])).code).toBe(2);
    expect((await sluice(['datasource', 'update'])).err).toContain('missing <datasource>');
  });
});
