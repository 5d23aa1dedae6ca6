import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AuditService, AuthService, BootstrapTokenService } from '@sluice/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestControlPlane, type TestControlPlane } from '../test-control-plane.ts';
import { appendAudit, verifyAudit } from './audit-log.ts';

describe('the audit trail', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({ label: 'cp_audit' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('records logins that succeed and logins that fail, with the caller’s IP and no secret', async () => {
    await t
      .client(AuthService)
      .login({ username: ADMIN.username, password: 'wrong-password-123' })
      .catch(() => undefined);
    await t
      .client(AuthService)
      .login({ username: 'nobody', password: 'wrong-password-123' })
      .catch(() => undefined);
    await t.login(ADMIN.username, ADMIN.password);
    const admin = await t.adminToken();
    const audit = t.client(AuditService, admin);
    const succeeded = await audit.listAuditEvents({ action: 'auth.login' });
    expect(succeeded.events.map((e) => e.outcome)).toContain('success');
    // Failures are summarised: one `login.failed` row per user and IP per window, with the count.
    await t.cp.flushFailureSummary();
    const failed = await audit.listAuditEvents({ action: 'login.failed' });
    const adminId = (await t.client(AuthService, admin).whoAmI({})).user!.id;
    const failedForAdmin = failed.events.find((e) => e.userId === adminId);
    expect(failedForAdmin).toMatchObject({ outcome: 'denied', resourceId: 'count=1' });
    expect(failedForAdmin?.ipAddress).toMatch(/127\.0\.0\.1/);
    // The unknown name is counted without a user id (and the name itself is never written).
    expect(failed.events.find((e) => e.userId === '')).toMatchObject({ resourceId: 'count=1' });
    expect(
      JSON.stringify(
        [...succeeded.events, ...failed.events].map((e) => [e.action, e.userId, e.resourceId, e.ipAddress]),
      ),
    ).not.toMatch(/wrong-password|nobody/);
  });

  it('records every mutating call with its resource, and filters and pages newest first', async () => {
    const admin = await t.adminToken();
    const tokens = t.client(BootstrapTokenService, admin);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await tokens.createBootstrapToken({ description: `t${i}` })).token!.id);
    const audit = t.client(AuditService, admin);
    const page1 = await audit.listAuditEvents({ action: 'bootstrap_token.create', pageSize: 3 });
    expect(page1.events.map((e) => e.resourceId)).toEqual([ids[4], ids[3], ids[2]]);
    expect(page1.nextPageToken).not.toBe('');
    const page2 = await audit.listAuditEvents({
      action: 'bootstrap_token.create',
      pageSize: 3,
      pageToken: page1.nextPageToken,
    });
    expect(page2.events.map((e) => e.resourceId)).toEqual([ids[1], ids[0]]);
    const byResource = await audit.listAuditEvents({ resourceId: ids[2]! });
    expect(byResource.events).toHaveLength(1);
    const adminId = (await t.client(AuthService, admin).whoAmI({})).user!.id;
    expect(byResource.events[0]?.userId).toBe(adminId);
    const future = await audit.listAuditEvents({
      since: timestampFromDate(new Date(Date.now() + 3_600_000)),
    });
    expect(future.events).toHaveLength(0);
    const byUser = await audit.listAuditEvents({ userId: adminId, action: 'bootstrap_token.create' });
    expect(byUser.events.length).toBe(5);
  });

  it('keeps one chain when many appends race', async () => {
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        appendAudit(t.cp.pool, { action: 'test.race', outcome: 'success', resourceId: `r${i}` }),
      ),
    );
    const result = await verifyAudit(t.cp.pool);
    expect(result).toMatchObject({ ok: true });
    const seqs = await t.cp.pool.query<{ seq: string }>('select seq from audit_events order by seq');
    expect(seqs.rows.map((r) => Number(r.seq))).toEqual(seqs.rows.map((_, i) => i + 1));
  });

  it('refuses updates and deletes of audit rows through ordinary SQL', async () => {
    await expect(
      t.cp.pool.query("update audit_events set outcome = 'success' where seq = 1"),
    ).rejects.toThrow(/append-only/);
    await expect(t.cp.pool.query('delete from audit_events where seq = 1')).rejects.toThrow(/append-only/);
  });

  it('names the edited row when someone with database access alters one', async () => {
    const admin = await t.adminToken();
    const audit = t.client(AuditService, admin, 'grpc');
    expect((await audit.verifyAuditChain({})).ok).toBe(true);
    // A superuser bypasses the trigger, as an attacker with database access could.
    await t.db.client.query('set session_replication_role = replica');
    try {
      await t.db.client.query("update audit_events set outcome = 'success', user_id = '' where seq = 3");
    } finally {
      await t.db.client.query('set session_replication_role = origin');
    }
    const broken = await audit.verifyAuditChain({});
    expect(broken.ok).toBe(false);
    expect(broken.firstBrokenSeq).toBe(3n);
    expect(broken.message).toMatch(/audit event 3 was altered/);
  });

  it('names a deleted row as missing', async () => {
    const count = await t.cp.pool.query<{ max: string }>('select max(seq) as max from audit_events');
    const victim = Number(count.rows[0]!.max) - 2;
    await t.db.client.query('set session_replication_role = replica');
    try {
      // Repair the edit of the previous test first, so this checks the deletion on its own.
      await t.db.client.query('delete from audit_events where seq = 3');
      await t.db.client.query('delete from audit_events where seq = $1', [victim]);
    } finally {
      await t.db.client.query('set session_replication_role = origin');
    }
    const result = await verifyAudit(t.cp.pool);
    expect(result).toMatchObject({ ok: false, firstBrokenSeq: 3 });
    expect(result.message).toMatch(/audit event 3 is missing/);
  });
});
