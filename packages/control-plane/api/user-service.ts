// UserService: admins manage users. Guards keep at least one enabled admin: an admin can't delete, demote or
// disable itself, so the control plane can't be locked out through the API.
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { UserService } from '@sluice/proto';
import { hashPassword } from '../auth/password.ts';
import { revokeUserTokens } from '../auth/refresh-tokens.ts';
import { insertUser, roleName, toUser, type UserRow } from '../auth/users.ts';
import { auditNoteKey, callerKey } from '../call-context.ts';
import { failedPrecondition, notFound } from '../errors.ts';
import type { ServiceDeps } from './service-deps.ts';
import { requireId, requirePassword } from './validation.ts';

function noteResource(ctx: HandlerContext, id: string): void {
  const note = ctx.values.get(auditNoteKey);
  if (note) note.resourceId = id;
}

export function createUserService(deps: ServiceDeps): ServiceImpl<typeof UserService> {
  const { pool } = deps;
  return {
    async createUser(req, ctx) {
      const role = roleName(req.role);
      const row = await insertUser(pool, { username: req.username, password: req.password, role });
      noteResource(ctx, row.id);
      return { user: toUser(row) };
    },

    async listUsers() {
      const result = await pool.query<UserRow>('select * from users order by username');
      return { users: result.rows.map(toUser) };
    },

    async updateUser(req, ctx) {
      const id = requireId('user', req.id);
      noteResource(ctx, id);
      const caller = ctx.values.get(callerKey)!;
      const role = req.role !== undefined ? roleName(req.role) : undefined;
      const password = req.password !== undefined ? requirePassword('password', req.password) : undefined;
      if (id === caller.userId && role !== undefined && role !== 'admin')
        throw failedPrecondition("an admin can't change its own role; another admin must");
      if (id === caller.userId && req.disabled === true)
        throw failedPrecondition("an admin can't disable itself");
      const sets: string[] = [];
      const values: unknown[] = [];
      const set = (column: string, value: unknown) => {
        values.push(value);
        sets.push(`${column} = $${values.length}`);
      };
      if (role !== undefined) set('role', role);
      if (password !== undefined) set('password_hash', await hashPassword(password));
      if (req.disabled !== undefined) set('disabled', req.disabled);
      set('updated_at', new Date());
      values.push(id);
      const result = await pool.query<UserRow>(
        `update users set ${sets.join(', ')} where id = $${values.length} returning *`,
        values,
      );
      const row = result.rows[0];
      if (!row) throw notFound('user', id);
      // A new password or a disabled account ends every session.
      if (password !== undefined || req.disabled === true) await revokeUserTokens(pool, id);
      return { user: toUser(row) };
    },

    async deleteUser(req, ctx) {
      const id = requireId('user', req.id);
      noteResource(ctx, id);
      const caller = ctx.values.get(callerKey)!;
      if (id === caller.userId) throw failedPrecondition("an admin can't delete itself");
      const result = await pool.query('delete from users where id = $1', [id]);
      if (result.rowCount === 0) throw notFound('user', id);
      return {};
    },
  };
}
