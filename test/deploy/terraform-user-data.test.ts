import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkUserDataText } from './terraform-policy.ts';
import { announceSkip, terraformTool } from './tools.ts';

// Renders the worker's user data with Terraform's own templatefile() (through `terraform console`, which
// needs no provider), then checks the script that an instance would really run.
const root = path.resolve(import.meta.dirname, '../..');
const terraform = terraformTool();
announceSkip('the rendered user data checks', terraform);

const VALUES = {
  region: 'eu-west-1',
  s3_endpoint: 'https://s3.eu-west-1.amazonaws.com',
  release_bucket: 'example-sluice-releases',
  release_key: 'sluice/0.1.0/sluice-worker-0.1.0-linux-x64.tar.gz',
  release_sha256: 'b'.repeat(64),
  bootstrap_token_parameter_name: '/sluice/prod/bootstrap-token',
  control_plane_url: 'https://sluice.internal.example.com:8443',
  control_plane_ca_pem: '-----BEGIN CERTIFICATE-----\nMIIBdemo\n-----END CERTIFICATE-----',
  log_group_name: '/sluice/sluice-prod/worker',
  log_level: 'info',
  autoscaling_group_name: 'sluice-prod',
  lifecycle_hook_name: 'sluice-prod-drain',
  drain_timeout_seconds: 300,
};

const dir = terraform.available ? mkdtempSync(path.join(tmpdir(), 'sluice-user-data-')) : '';
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function render(): string {
  copyFileSync(
    path.join(root, 'terraform/modules/worker/user-data.sh.tftpl'),
    path.join(dir, 'user-data.sh.tftpl'),
  );
  writeFileSync(path.join(dir, 'values.json'), JSON.stringify(VALUES));
  const result = spawnSync('terraform', ['console'], {
    cwd: dir,
    input: 'base64encode(templatefile("user-data.sh.tftpl", jsondecode(file("values.json"))))\n',
    encoding: 'utf8',
    timeout: 60_000,
  });
  const encoded = /^"([A-Za-z0-9+/=]+)"$/m.exec(result.stdout)?.[1];
  expect(encoded, result.stderr).toBeDefined();
  return Buffer.from(encoded!, 'base64').toString('utf8');
}

describe('worker user data, rendered', () => {
  let script = '';
  beforeAll(() => {
    if (terraform.available) script = render();
  });

  it.skipIf(!terraform.available)('is a bash script that parses', () => {
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    const syntax = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    expect(syntax.stderr).toBe('');
    expect(syntax.status).toBe(0);
  });

  it.skipIf(!terraform.available)('passes the user data policy', () => {
    expect(checkUserDataText('rendered user data', script)).toEqual([]);
  });

  it.skipIf(!terraform.available)('carries the settings, the checksum and the CA, and no token', () => {
    expect(script).toContain(`RELEASE_SHA256='${'b'.repeat(64)}'`);
    expect(script).toContain('Environment=SLUICE_CONTROL_PLANE=https://sluice.internal.example.com:8443\n');
    expect(script).toContain('TimeoutStopSec=300\n');
    expect(script).toContain("--name '/sluice/prod/bootstrap-token' --with-decryption");
    expect(script).toContain('-----BEGIN CERTIFICATE-----\nMIIBdemo\n-----END CERTIFICATE-----\nPEM\n');
    expect(script).not.toMatch(/SLUICE_BOOTSTRAP_TOKEN=/);
    expect(new TextEncoder().encode(script).length).toBeLessThan(16 * 1024);
  });
});
