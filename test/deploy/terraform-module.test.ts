import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDirectory } from './terraform-policy.ts';

const root = path.resolve(import.meta.dirname, '../..');
const moduleDir = path.join(root, 'terraform/modules/worker');
const parsed = await parseDirectory(moduleDir);

type Body = Record<string, unknown>;

/** A Terraform expression as hcl2json renders it: `${expression}`. */
const tf = (expression: string) => `\${${expression}}`;

function section(name: string): Record<string, Body[]> {
  const merged: Record<string, Body[]> = {};
  for (const file of parsed) Object.assign(merged, (file[name] as Record<string, Body[]> | undefined) ?? {});
  return merged;
}

function resource(type: string, name = 'this'): Body {
  const bodies = (section('resource')[type] as unknown as Record<string, Body[]> | undefined)?.[name];
  expect(bodies, `resource ${type}.${name}`).toBeDefined();
  return bodies![0]!;
}

function first(value: unknown): Body {
  expect(Array.isArray(value) && value.length > 0).toBe(true);
  return (value as Body[])[0]!;
}

const variables = section('variable');
const outputs = section('output');
const readme = readFileSync(path.join(moduleDir, 'README.md'), 'utf8');
const userData = readFileSync(path.join(moduleDir, 'user-data.sh.tftpl'), 'utf8');

describe('terraform/modules/worker', () => {
  it('validates and describes every variable', () => {
    const undocumented = Object.entries(variables)
      .filter(([, [body]]) => typeof body?.description !== 'string' || !Array.isArray(body.validation))
      .map(([name]) => name);
    expect(Object.keys(variables).length).toBeGreaterThan(10);
    expect(undocumented).toEqual([]);
  });

  it('describes every output, and the README lists every input and output', () => {
    for (const [name, [body]] of Object.entries(outputs)) {
      expect(body?.description, `output ${name}`).toBeTypeOf('string');
    }
    const missing = [...Object.keys(variables), ...Object.keys(outputs)].filter(
      (name) => !readme.includes(`| \`${name}\` |`),
    );
    expect(missing).toEqual([]);
  });

  it('pins Terraform and the AWS provider', () => {
    const versions = readFileSync(path.join(moduleDir, 'versions.tf'), 'utf8');
    expect(versions).toMatch(/required_version\s*=\s*">= 1\.\d+\.\d+, < 2\.0\.0"/);
    expect(versions).toMatch(
      /source\s*=\s*"hashicorp\/aws"\s*\n\s*version\s*=\s*">= 5\.\d+\.\d+, < 7\.0\.0"/,
    );
  });

  it('creates a rotating customer-managed key unless one is passed', () => {
    const key = resource('aws_kms_key');
    expect(key.count).toBe(tf('local.create_kms_key ? 1 : 0'));
    expect(key.enable_key_rotation).toBe(true);
    const ebs = first(first(resource('aws_launch_template').block_device_mappings).ebs);
    expect(ebs).toMatchObject({ encrypted: true, volume_type: 'gp3', kms_key_id: tf('local.kms_key_arn') });
  });

  it('replaces workers by rolling instance refresh and lets a terminating worker drain', () => {
    const group = resource('aws_autoscaling_group');
    expect(group.health_check_grace_period).toBe(300);
    const refresh = first(group.instance_refresh);
    expect(refresh.strategy).toBe('Rolling');
    expect(first(refresh.preferences).min_healthy_percentage).toBe(50);
    const hook = first(group.initial_lifecycle_hook);
    expect(hook).toMatchObject({
      lifecycle_transition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      default_result: 'CONTINUE',
    });
    expect(userData).toContain('autoscaling/target-lifecycle-state');
    expect(userData).toContain('aws autoscaling complete-lifecycle-action');
  });

  it('runs the worker under a hardened systemd unit', () => {
    const unit = /cat >\/etc\/systemd\/system\/sluice-worker\.service <<'UNIT'\n([\s\S]*?)\nUNIT\n/.exec(
      userData,
    )?.[1];
    expect(unit).toBeDefined();
    for (const setting of [
      'LimitCORE=0',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'CapabilityBoundingSet=',
      'UnsetEnvironment=NODE_OPTIONS',
      'User=sluice',
    ]) {
      expect(unit!.split('\n'), setting).toContain(setting);
    }
  });

  it('fetches the bootstrap token from SSM when the worker starts, never through user data', () => {
    expect(userData).toMatch(/^ExecStartPre=-\+\/usr\/local\/libexec\/sluice\/fetch-bootstrap-token$/m);
    expect(userData).toMatch(/aws ssm get-parameter .*--with-decryption/);
    const templateVariables = /templatefile\([^,]+,\s*\{([\s\S]*?)\}\)/.exec(
      String(resource('aws_launch_template').user_data),
    )?.[1];
    expect(templateVariables).toBeDefined();
    expect(templateVariables).not.toMatch(/\btoken\s*=/);
    expect(userData).toMatch(/^Environment=SLUICE_BOOTSTRAP_TOKEN_FILE=\/run\/sluice\/bootstrap-token$/m);
  });

  it('downloads the release over HTTPS and checks its SHA-256 before unpacking it', () => {
    const lines = userData.split('\n');
    const download = lines.findIndex((line) => line.includes('aws s3api get-object'));
    const verify = lines.findIndex((line) => /sha256sum -c/.test(line));
    const unpack = lines.findIndex((line) => /^tar -xzf/.test(line));
    expect(download).toBeGreaterThanOrEqual(0);
    expect(lines[download]).toContain('--endpoint-url "$S3_ENDPOINT"');
    expect(String(resource('aws_launch_template').user_data)).toContain(
      's3_endpoint                    = "https://',
    );
    expect(download).toBeLessThan(verify);
    expect(verify).toBeLessThan(unpack);
  });
});
