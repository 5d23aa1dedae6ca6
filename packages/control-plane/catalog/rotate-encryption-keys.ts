// Re-encrypts every stored secret under the keyring's current key, in one transaction: either every secret
// moves to the new key or none does. Works online (KeyService) and offline (the CLI with only the catalog).
import { createLogger, type Keyring, wipe } from '@sluice/crypto';
import pg from 'pg';
import type { DestinationStream } from 'pino';
import type { ControlPlaneConfig } from '../config.ts';
import { openCatalog } from './catalog.ts';
import { rebindDatasourcePasswords } from './datasource-secrets.ts';
import { decryptField, encryptField, SECRET_COLUMNS } from './secret-columns.ts';

export interface RotationResult {
  /** Secrets re-encrypted (already-current ones are counted too: each one is rewritten). */
  reencrypted: number;
  /** The key id every secret is now under. */
  keyId: string;
}

export async function rotateEncryptionKeys(pool: pg.Pool, keyring: Keyring): Promise<RotationResult> {
  const client = await pool.connect();
  let reencrypted = 0;
  try {
    await client.query('begin');
    try {
      // Datasource passwords are bound to their connection target too (and older rows are migrated to that).
      reencrypted += await rebindDatasourcePasswords(client, keyring, { onlyLegacy: false });
      for (const { table, idColumn, column, field } of SECRET_COLUMNS) {
        if (table === 'datasources' && field === 'password') continue;
        const id = pg.escapeIdentifier(idColumn);
        const col = pg.escapeIdentifier(column);
        const tbl = pg.escapeIdentifier(table);
        const rows = await client.query<{ id: string | number; ciphertext: Buffer }>(
          `select ${id} as id, ${col} as ciphertext from ${tbl} where ${col} is not null for update`,
        );
        for (const row of rows.rows) {
          const plaintext = decryptField(keyring, table, row.id, field, row.ciphertext);
          try {
            const next = encryptField(keyring, table, row.id, field, plaintext);
            await client.query(`update ${tbl} set ${col} = $1 where ${id} = $2`, [next, row.id]);
          } finally {
            wipe(plaintext);
          }
          reencrypted += 1;
        }
      }
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw error;
    }
  } finally {
    client.release();
  }
  return { reencrypted, keyId: keyring.currentKeyId };
}

/**
 * The offline command (`sluice keys rotate`): opens the configured catalog (embedded or DATABASE_URL),
 * migrates it if needed, rotates, and closes it. Run it with the new key as CONFIG_ENCRYPTION_KEY and the old
 * one in CONFIG_ENCRYPTION_PREVIOUS_KEYS, while no control plane writes to the catalog.
 */
export async function rotateCatalogKeys(
  config: Pick<ControlPlaneConfig, 'catalog' | 'keyring' | 'logLevel'>,
  options: { logDestination?: DestinationStream } = {},
): Promise<RotationResult> {
  const logger = createLogger('keys-rotate', {
    level: config.logLevel,
    ...(options.logDestination && { destination: options.logDestination }),
  });
  const catalog = await openCatalog(config.catalog, logger);
  try {
    const result = await rotateEncryptionKeys(catalog.pool, config.keyring);
    logger.info({ reencrypted: result.reencrypted, keyId: result.keyId }, 'secrets re-encrypted');
    return result;
  } finally {
    await catalog.close();
  }
}
