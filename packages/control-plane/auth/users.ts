// User records: creation (also for the first admin, before any token exists), lookup and the proto form.
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Role, type User, UserSchema } from '@sluice/proto';
import type pg from 'pg';
import { requirePassword, requireUsername } from '../api/validation.ts';
import type { RoleName } from '../call-context.ts';
import { alreadyExists, failedPrecondition, invalidArgument, isUniqueViolation } from '../errors.ts';
import { hashPassword } from './password.ts';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: RoleName;
  disabled: boolean;
  created_at: Date;
}

export const ROLE_VALUES: Readonly<Record<RoleName, Role>> = {
  admin: Role.ADMIN,
  operator: Role.OPERATOR,
  viewer: Role.VIEWER,
};

export function roleName(role: Role, field = 'role'): RoleName {
  const name = (Object.entries(ROLE_VALUES) as Array<[RoleName, Role]>).find(([, v]) => v === role)?.[0];
  if (!name) throw invalidArgument(`${field} is required: admin, operator or viewer`);
  return name;
}

export function toUser(row: UserRow): User {
  return create(UserSchema, {
    id: row.id,
    username: row.username,
    role: ROLE_VALUES[row.role],
    disabled: row.disabled,
    createdAt: timestampFromDate(row.created_at),
  });
}

export async function insertUser(
  db: pg.Pool | pg.PoolClient,
  input: { username: string; password: string; role: RoleName },
): Promise<UserRow> {
  const username = requireUsername(input.username);
  const password = requirePassword('password', input.password);
  const hash = await hashPassword(password);
  try {
    const result = await db.query<UserRow>(
      'insert into users (id, username, password_hash, role) values ($1, $2, $3, $4) returning *',
      [randomUUID(), username, hash, input.role],
    );
    return result.rows[0]!;
  } catch (error) {
    if (isUniqueViolation(error)) throw alreadyExists(`user name ${JSON.stringify(username)} is taken`);
    throw error;
  }
}

/**
 * Creates the first admin: the bootstrap step the CLI (`sluice admin create`) or a one-time setting performs
 * before anyone can log in. Refused once any admin exists, so it can't be used to add a backdoor later.
 * The check and the insert run under a lock, so two concurrent calls create one admin.
 */
export async function createFirstAdmin(
  pool: pg.Pool,
  input: { username: string; password: string },
): Promise<User> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('lock table users in share row exclusive mode');
    const admins = await client.query("select 1 from users where role = 'admin' limit 1");
    if (admins.rowCount)
      throw failedPrecondition('an admin already exists; create further users through the API');
    const row = await insertUser(client, { ...input, role: 'admin' });
    await client.query('commit');
    return toUser(row);
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}
