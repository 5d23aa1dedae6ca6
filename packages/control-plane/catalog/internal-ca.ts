// The internal CA lives in the catalog: its certificate in clear, its private key encrypted like any secret.
// The first control plane to start creates it; concurrent starters agree on one through the primary key
// (id = 1) and `on conflict do nothing`, then everyone loads the stored one.
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type Keyring,
  loadCertificateAuthority,
} from '@sluice/crypto';
import type pg from 'pg';
import { decryptField, encryptField } from './secret-columns.ts';

const TABLE = 'internal_ca';
const ROW_ID = 1;
const FIELD = 'key';

export async function ensureInternalCa(
  pool: pg.Pool,
  keyring: Keyring,
  trustDomain: string,
): Promise<CertificateAuthority> {
  let row = await loadRow(pool);
  if (!row) {
    const created = await createCertificateAuthority({ trustDomain, commonName: 'Sluice internal CA' });
    const keyPem = created.exportKeyPem();
    await pool.query(
      `insert into internal_ca (id, trust_domain, cert_pem, key_ciphertext) values ($1, $2, $3, $4)
       on conflict (id) do nothing`,
      [ROW_ID, trustDomain, created.certPem, encryptField(keyring, TABLE, ROW_ID, FIELD, keyPem)],
    );
    row = await loadRow(pool);
    if (!row) throw new Error('internal CA row vanished after insert');
  }
  if (row.trust_domain !== trustDomain)
    throw new Error(
      `SLUICE_TRUST_DOMAIN: the catalog's internal CA is for trust domain ${row.trust_domain}; keep that setting`,
    );
  const key = decryptField(keyring, TABLE, ROW_ID, FIELD, row.key_ciphertext);
  try {
    return await loadCertificateAuthority({
      certPem: row.cert_pem,
      keyPem: key.toString('utf8'),
      trustDomain,
    });
  } finally {
    key.fill(0);
  }
}

async function loadRow(
  pool: pg.Pool,
): Promise<{ trust_domain: string; cert_pem: string; key_ciphertext: Buffer } | undefined> {
  const result = await pool.query<{ trust_domain: string; cert_pem: string; key_ciphertext: Buffer }>(
    'select trust_domain, cert_pem, key_ciphertext from internal_ca where id = $1',
    [ROW_ID],
  );
  return result.rows[0];
}
