import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_REDACT_PATHS, loggerOptions } from './logger-options.ts';
import { scrubSecrets } from './scrub-secrets.ts';
import { Secret } from './secret.ts';

const CANARY = 'Canary7Zq9x3';
const DSN = `postgres://sluice:${CANARY}@db.internal:5432/app?sslmode=verify-full`;
const PEM = `-----BEGIN PRIVATE KEY-----\nMIGH${CANARY}AgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n`;

function capture(level = 'trace') {
  const lines: string[] = [];
  const logger = createLogger('test', { level, destination: { write: (line: string) => lines.push(line) } });
  return { logger, lines, text: () => lines.join('') };
}

describe('the shared pino settings', () => {
  it('are needed: plain pino writes the same canaries this file proves absent', () => {
    const lines: string[] = [];
    const plain = pino({}, { write: (line: string) => lines.push(line) });
    plain.info({ a: { b: { password: CANARY } } }, `dsn ${DSN}`);
    plain.error(new Error(`connect failed: ${DSN}`));
    expect(lines.join('')).toContain(CANARY);
    expect(lines).toHaveLength(2);
  });

  it('never print a Secret holding a DSN, logged directly, nested, in arrays, as a format argument or in an Error', () => {
    const { logger, text, lines } = capture();
    const dsn = Secret.of(DSN);
    logger.info({ dsn });
    logger.info({ job: { source: { connection: dsn, replicas: [dsn, { url: dsn }] } } }, 'nested');
    logger.info('connecting to %s with %o', dsn, { target: dsn });
    logger.info(`template ${dsn}`);
    logger.error(new Error(`connect failed for ${dsn}`));
    logger.error({ err: new Error(`raw ${DSN}`), attempt: 2 }, 'raw DSN in a driver error');
    expect(lines).toHaveLength(6);
    expect(text()).not.toContain(CANARY);
    expect(text()).not.toContain('sluice:');
  });

  it('scrub what reaches the line past the hooks, such as a child message prefix', () => {
    const { logger, text } = capture();
    logger.child({}, { msgPrefix: `[${DSN}] ` }).info('prefixed');
    expect(text()).not.toContain(CANARY);
    expect(text()).toContain('prefixed');
  });

  it('redact secret fields at the top level, several levels deep and in case variants', () => {
    const { logger, text, lines } = capture();
    logger.info({
      password: CANARY,
      Password: CANARY,
      PASSWORD: CANARY,
      dbPassword: CANARY,
      a: { b: { c: { d: { e: { ssl_client_key: CANARY, connectionString: CANARY } } } } },
      req: { headers: { authorization: `Bearer ${CANARY}`, Authorization: CANARY, cookie: CANARY } },
      datasource: { host: 'db.internal', port: 5432, user: 'sluice' },
    });
    expect(text()).not.toContain(CANARY);
    const line = JSON.parse(lines[0] ?? '{}');
    expect(line.password).toBe('[REDACTED]');
    expect(line.a.b.c.d.e.ssl_client_key).toBe('[REDACTED]');
    // What isn't secret still gets logged: redaction must not blank the whole line.
    expect(line.datasource).toEqual({ host: 'db.internal', port: 5432, user: 'sluice' });
  });

  it('redact array items, Secret values and raw bytes', () => {
    const { logger, text } = capture();
    logger.info({
      tokens: [CANARY, CANARY],
      workers: [
        { id: 'w1', token: CANARY },
        { id: 'w2', credentials: { user: 'u', pass: CANARY } },
      ],
      wrapped: Secret.of(CANARY),
      list: [Secret.of(Buffer.from(CANARY))],
      bytes: Buffer.from(CANARY),
      notes: [`dsn was ${DSN}`],
    });
    expect(text()).not.toContain(CANARY);
    expect(text()).toContain('"id":"w2"');
  });

  it('scrub DSNs out of Error messages however the error is logged, keeping type, code and host', () => {
    const { logger, text, lines } = capture();
    const driverError = Object.assign(new Error(`connect ECONNREFUSED while using ${DSN}`), {
      code: 'ECONNREFUSED',
      connectionString: DSN,
      config: { password: CANARY },
    });
    logger.error(driverError);
    logger.error(driverError, 'source connection failed');
    logger.error({ err: driverError }, 'with a message');
    logger.error({ err: driverError });
    logger.warn({ error: driverError, job: 'j1' }, 'retrying');
    logger.error({ nested: { cause: driverError } }, 'nested');
    expect(text()).not.toContain(CANARY);
    const first = JSON.parse(lines[0] ?? '{}');
    expect(first.err).toEqual({
      type: 'Error',
      code: 'ECONNREFUSED',
      message:
        'connect ECONNREFUSED while using postgres://[REDACTED]@db.internal:5432/app?sslmode=verify-full',
    });
    expect(first.msg).toContain('db.internal');
  });

  it('scrub secrets out of messages, format arguments and child bindings', () => {
    const { logger, text } = capture();
    logger.info(`connecting with ${DSN}`);
    logger.info('connecting with %s', DSN);
    logger.info('config %j', { password: CANARY, dsn: DSN });
    logger.info(`host=db port=5432 password=${CANARY} sslmode=require`);
    logger.info(`loaded ${PEM}`);
    logger.child({ dsn: DSN, jobId: 'j1' }).info({ authHeader: `Bearer ${CANARY}x9` }, 'child');
    logger.info({ body: `{"user":"u","password":"${CANARY}"}` }, 'upstream said');
    expect(text()).not.toContain(CANARY);
    expect(text()).toContain('"jobId":"j1"');
  });

  it('never print a Secret or a redacted path through a level-filtered child logger either', () => {
    const { logger, text } = capture('debug');
    const child = logger.child({ datasource: { password: CANARY } });
    child.debug({ secret: Secret.of(CANARY) }, 'using %s', Secret.of(CANARY));
    child.trace({ raw: CANARY }, 'filtered out by level');
    expect(text()).not.toContain(CANARY);
    expect(text()).toContain('using [REDACTED]');
  });

  it('export loggerOptions with the redact paths, censor, name and level for services that build their own pino', () => {
    const options = loggerOptions('control-plane', 'debug');
    expect(options.name).toBe('control-plane');
    expect(options.level).toBe('debug');
    expect(options.redact).toEqual({ paths: [...LOG_REDACT_PATHS], censor: '[REDACTED]' });
    expect(LOG_REDACT_PATHS).toContain('req.headers.authorization');
    expect(LOG_REDACT_PATHS).toContain('*.*.password');
    expect(loggerOptions('x').level).toBe('info');
  });
});

describe('scrubSecrets', () => {
  it('removes URI user info, even when the password holds an unescaped @', () => {
    expect(scrubSecrets(`a ${DSN} b`)).toBe(
      'a postgres://[REDACTED]@db.internal:5432/app?sslmode=verify-full b',
    );
    expect(scrubSecrets(`mysql://root:p@ss${CANARY}@h:9030/`)).toBe('mysql://[REDACTED]@h:9030/');
    expect(scrubSecrets('https://example.com/path?q=1')).toBe('https://example.com/path?q=1');
  });

  it('removes password=… style pairs, quoted or not, in any case', () => {
    expect(scrubSecrets(`host=h password=${CANARY} user=u`)).toBe('host=h password=[REDACTED] user=u');
    expect(scrubSecrets(`PASSWORD='${CANARY} with space' user=u`)).toBe('PASSWORD=[REDACTED] user=u');
    expect(scrubSecrets(`?sslpassword=${CANARY}&token=${CANARY}&x=1`)).toBe(
      '?sslpassword=[REDACTED]&token=[REDACTED]&x=1',
    );
  });

  it('removes JSON secret fields, PEM private keys and bearer tokens', () => {
    const text = scrubSecrets(
      `{"password":"${CANARY}","apiKey":"${CANARY}"} ${PEM} Authorization: Bearer ${CANARY}abc.def`,
    );
    expect(text).not.toContain(CANARY);
    expect(text).toContain('[REDACTED PRIVATE KEY]');
    expect(text).toContain('Bearer [REDACTED]');
    expect(scrubSecrets('Bearer token missing')).toBe('Bearer token missing');
  });
});

describe('scrubSecrets against the forms issue 16 found leaking', () => {
  // Each line is how a credential really reaches text: a YAML or Python dump, an `env` listing, a shell
  // command line, a JSON body, a DSN, an HTTP header. None of them may keep the canary.
  const leaks = [
    `password: ${CANARY}`,
    `password:${CANARY} next`,
    `Password = ${CANARY}`,
    `PGPASSWORD=${CANARY} psql -h db`,
    `export PGPASSWORD='${CANARY} x'`,
    `env: PGPASSWORD=${CANARY}\nDB_PASSWORD=${CANARY}\nMYSQL_PWD=${CANARY}\nSLUICE_BOOTSTRAP_TOKEN=${CANARY}`,
    `PGPASSWORD: ${CANARY}`,
    `password=${CANARY}`,
    `pwd=${CANARY};`,
    `{"password":"${CANARY}"}`,
    `{ "starrocks_password" : "${CANARY}" }`,
    `{'password': '${CANARY}'}`,
    `postgres://u:${CANARY}@db:5432/app`,
    `postgresql://${CANARY}@db/app`,
    `Authorization: Basic ${Buffer.from(`root:${CANARY}`).toString('base64')}`,
    `authorization: Basic ${CANARY.slice(0, 5)}`,
    `Proxy-Authorization: ${CANARY}`,
    `headers={"Authorization": "Basic ${CANARY}"}`,
  ];
  for (const leak of leaks) {
    it(`hides the canary in ${JSON.stringify(leak.slice(0, 40))}`, () => {
      const out = scrubSecrets(leak);
      expect(out).not.toContain(CANARY);
      expect(out).not.toContain(CANARY.slice(0, 5));
      expect(out).not.toContain(Buffer.from(`root:${CANARY}`).toString('base64'));
      expect(out).toContain('[REDACTED]');
    });
  }

  it('keeps the key and the text around it, so the line still says what was wrong', () => {
    expect(scrubSecrets(`PGPASSWORD=${CANARY} psql -h db`)).toBe('PGPASSWORD=[REDACTED] psql -h db');
    expect(scrubSecrets(`user: u\npassword: ${CANARY}\nhost: h`)).toBe(
      'user: u\npassword: [REDACTED]\nhost: h',
    );
    expect(scrubSecrets(`{"password":"${CANARY}","user":"u"}`)).toBe('{"password":"[REDACTED]","user":"u"}');
    expect(scrubSecrets('Authorization: Basic dTpw, next')).toBe('Authorization: Basic [REDACTED], next');
  });

  it('leaves unrelated text alone', () => {
    for (const text of [
      'password authentication failed for user "sluice"',
      'the password is wrong for user x',
      'select password::text from t',
      'PGPASSFILE=/home/u/.pgpass',
      'tokenizer=bert keyword=x sessions: 3',
      'Basic auth is not enabled',
      'https://example.com/a?b=1',
    ]) {
      expect(scrubSecrets(text)).toBe(text);
    }
  });

  it('does not redact twice', () => {
    expect(scrubSecrets(scrubSecrets(`password: ${CANARY} {"token":"${CANARY}"}`))).toBe(
      'password: [REDACTED] {"token":"[REDACTED]"}',
    );
  });

  it('stays linear on a long run of word characters', () => {
    const long = `${'a_'.repeat(50_000)}x`;
    const started = performance.now();
    expect(scrubSecrets(long)).toBe(long);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('reaches log lines: a PGPASSWORD in a message or an env dump object does not get written', () => {
    const { logger, text } = capture();
    logger.info(`spawned psql with PGPASSWORD=${CANARY}`);
    logger.info({ env: `PGPASSWORD=${CANARY}\nAuthorization: Basic ${CANARY.slice(0, 5)}` }, 'env');
    expect(text()).not.toContain(CANARY.slice(0, 5));
  });
});
