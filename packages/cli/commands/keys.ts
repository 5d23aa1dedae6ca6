// `sluice keys generate|rotate`: at-rest encryption keys. Rotation re-encrypts every stored secret under the
// newest key, either through a running control plane (KeyService) or offline on the catalog.
import { writeFile } from 'node:fs/promises';
import { generateEncryptionKey, loadKeyring } from '@sluice/crypto';
import { KeyService } from '@sluice/proto';
import { usageError } from '../cli-error.ts';
import { connect } from '../client.ts';
import { type CommandSpec, stringFlag } from '../command-table.ts';
import { CATALOG_FLAGS, catalogSource, stderrLog } from '../offline-catalog.ts';
import { printJson, println } from '../output.ts';

export const keysCommand: CommandSpec = {
  name: 'keys',
  summary: 'At-rest encryption keys (CONFIG_ENCRYPTION_KEY)',
  subcommands: [
    {
      name: 'generate',
      summary: 'Print a new random 256-bit key as 64 hex characters (or write it to a 0600 file)',
      flags: {
        output: {
          type: 'string',
          value: 'FILE',
          description: 'write the key to a new file (mode 0600) instead of stdout',
        },
      },
      examples: ['sluice keys generate --output /run/secrets/config_encryption_key'],
      async run(context) {
        const key = generateEncryptionKey();
        const output = stringFlag(context.flags, 'output');
        if (output) {
          await writeFile(output, `${key}\n`, { mode: 0o600, flag: 'wx' });
          if (context.json) printJson(context, { output });
          else println(context, `key written to ${output}`);
        } else if (context.json) printJson(context, { key });
        else println(context, key);
        return 0;
      },
    },
    {
      name: 'rotate',
      summary: 'Re-encrypt every stored secret under the newest key',
      description:
        'Online (default): asks the logged-in control plane, whose keyring already holds the new key (admin).\n' +
        'Offline (--offline): opens the catalog itself while no control plane runs; give the new key as\n' +
        'CONFIG_ENCRYPTION_KEY[_FILE] and the old ones as CONFIG_ENCRYPTION_PREVIOUS_KEYS[_FILE].',
      flags: {
        offline: { type: 'boolean', description: 'rotate directly in the catalog, without a control plane' },
        'encryption-key-file': {
          type: 'string',
          value: 'FILE',
          env: 'CONFIG_ENCRYPTION_KEY_FILE',
          description: 'offline: the new key (CONFIG_ENCRYPTION_KEY is read too)',
        },
        'previous-keys-file': {
          type: 'string',
          value: 'FILE',
          env: 'CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE',
          description: 'offline: older keys, comma-separated (CONFIG_ENCRYPTION_PREVIOUS_KEYS is read too)',
        },
        ...CATALOG_FLAGS,
      },
      examples: [
        'sluice keys rotate',
        'CONFIG_ENCRYPTION_KEY_FILE=new.key CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE=old.key sluice keys rotate --offline',
      ],
      async run(context) {
        let result: { reencrypted: number | bigint; keyId: string };
        if (context.flags.offline) {
          const env: NodeJS.ProcessEnv = { ...context.env };
          const keyFile = stringFlag(context.flags, 'encryption-key-file');
          const previousFile = stringFlag(context.flags, 'previous-keys-file');
          if (keyFile) env.CONFIG_ENCRYPTION_KEY_FILE = keyFile;
          if (previousFile) env.CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE = previousFile;
          let keyring: ReturnType<typeof loadKeyring>;
          try {
            keyring = loadKeyring(env);
          } catch (error) {
            throw usageError((error as Error).message);
          }
          const { rotateCatalogKeys } = await import('@sluice/control-plane');
          result = await rotateCatalogKeys(
            {
              catalog: catalogSource(context.flags, context.env),
              keyring,
              logLevel: context.env.SLUICE_LOG_LEVEL || 'warn',
            },
            { logDestination: stderrLog },
          );
        } else {
          const connection = await connect(context);
          result = await connection.client(KeyService).rotateEncryptionKeys({});
        }
        if (context.json)
          printJson(context, { reencrypted: Number(result.reencrypted), keyId: result.keyId });
        else println(context, `${result.reencrypted} secrets re-encrypted under key ${result.keyId}`);
        return 0;
      },
    },
  ],
};
