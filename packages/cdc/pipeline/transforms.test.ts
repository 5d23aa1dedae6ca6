import { hashPii, hmacPii } from '@sluice/crypto';
import { describe, expect, it } from 'vitest';
import type { TableSchema } from '../change-event.ts';
import { UNCHANGED_TOAST } from '../change-event.ts';
import { TransformError, Transforms } from './transforms.ts';

const users = { schema: 'public', name: 'users' };
const int4 = { oid: 23, name: 'int4', modifier: -1, kind: 'base' as const };
const varchar = { oid: 1043, name: 'varchar', modifier: 24, kind: 'base' as const };
const schema: TableSchema = {
  table: users,
  columns: [
    { name: 'id', type: int4, nullable: false },
    { name: 'email', type: varchar, nullable: true },
    { name: 'ssn', type: varchar, nullable: true },
  ],
  primaryKey: ['id'],
};

describe('Transforms', () => {
  it('removes excluded columns from the schema and hashed columns become text', () => {
    const transforms = new Transforms({
      excludeColumns: [{ table: users, column: 'ssn' }],
      hashColumns: [{ table: users, column: 'email' }],
    });
    const target = transforms.schema(schema);
    expect(target.columns.map((column) => column.name)).toEqual(['id', 'email']);
    expect(target.columns[1]!.type.name).toBe('text');
    expect(schema.columns).toHaveLength(3);
  });

  it('hashes with SHA-256 of the normalised value, or HMAC with the job key, and keeps nulls and TOAST markers', () => {
    const plain = new Transforms({ hashColumns: [{ table: users, column: 'email' }] });
    expect(plain.row(users, { id: 1, email: ' A@B.io ' }).email).toBe(hashPii('a@b.io'));
    expect(plain.row(users, { id: 1, email: null }).email).toBeNull();
    expect(plain.row(users, { id: 1, email: UNCHANGED_TOAST }).email).toBe(UNCHANGED_TOAST);
    const key = new Uint8Array(32).fill(1);
    const keyed = new Transforms({ hashColumns: [{ table: users, column: 'email' }], hmacKey: key });
    expect(keyed.row(users, { id: 1, email: 'a@b.io' }).email).toBe(hmacPii(key, 'a@b.io'));
  });

  it('applies to deletes and old keys too, and leaves other tables alone', () => {
    const transforms = new Transforms({ hashColumns: [{ table: users, column: 'id' }] });
    const event = { kind: 'delete' as const, lsn: 1n, table: users, key: { id: 5 } };
    transforms.event(event);
    expect(event.key.id).toBe(hashPii(5));
    const other = { id: 5 };
    expect(transforms.row({ schema: 'public', name: 'x' }, other)).toEqual({ id: 5 });
  });

  it('refuses to exclude a key column', () => {
    const transforms = new Transforms({ excludeColumns: [{ table: users, column: 'id' }] });
    expect(() => transforms.schema(schema)).toThrow(TransformError);
  });
});
