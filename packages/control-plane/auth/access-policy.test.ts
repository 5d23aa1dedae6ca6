import { health, WorkerService } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { ADMIN_SERVICES } from '../api/routes.ts';
import { ACCESS_POLICY } from './access-policy.ts';

const READ_ONLY = /^(Get|List|Watch|WhoAmI|Verify)/;

describe('the access policy', () => {
  const services = [...ADMIN_SERVICES, WorkerService, health.Health];

  it('names a rule for every method the port serves, and nothing else', () => {
    const methods = services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
    expect(methods.filter((m) => !ACCESS_POLICY[m])).toEqual([]);
    expect(Object.keys(ACCESS_POLICY).filter((k) => !methods.includes(k))).toEqual([]);
  });

  it('audits every admin method that changes something, and no read', () => {
    for (const service of ADMIN_SERVICES) {
      for (const method of service.methods) {
        const rule = ACCESS_POLICY[`${service.typeName}/${method.name}`]!;
        if (READ_ONLY.test(method.name)) expect(rule.audit, method.name).toBeUndefined();
        else expect(rule.audit, method.name).toMatch(/^[a-z_]+\.[a-z_]+$/);
      }
    }
  });

  it('opens only login, refresh and health to callers without a token', () => {
    const open = Object.entries(ACCESS_POLICY)
      .filter(([, rule]) => rule.access === 'public')
      .map(([method]) => method);
    expect(open.sort()).toEqual([
      'grpc.health.v1.Health/Check',
      'grpc.health.v1.Health/Watch',
      'sluice.v1.AuthService/Login',
      'sluice.v1.AuthService/Refresh',
    ]);
  });
});
