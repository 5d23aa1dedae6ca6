import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { announceSkip, terraformTool } from './tools.ts';

// Runs the worker module's variable validations for real: `terraform console` evaluates them without
// providers or credentials when given only variables.tf. It reports a failed validation as an error on
// its output but still exits 0, so the output is what is checked.
const root = path.resolve(import.meta.dirname, '../..');
const terraform = terraformTool();
announceSkip('the terraform variable validation checks', terraform);

const GOOD = {
  name: 'sluice-prod',
  vpc_id: 'vpc-0123456789abcdef0',
  subnet_ids: ['subnet-0123456789abcdef0'],
  ami_id: 'ami-0123456789abcdef0',
  release_bucket: 'example-sluice-releases',
  release_key: 'sluice/0.1.0/sluice-worker-0.1.0-linux-x64.tar.gz',
  release_sha256: 'a'.repeat(64),
  bootstrap_token_parameter_name: '/sluice/prod/bootstrap-token',
  control_plane_url: 'https://sluice.internal.example.com:8443',
  control_plane_ca_pem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  control_plane_cidr_blocks: ['10.0.10.0/24'],
  source_postgres_cidr_blocks: ['10.0.20.10/32'],
  starrocks_cidr_blocks: ['10.0.30.0/24'],
  https_egress_cidr_blocks: ['0.0.0.0/0'],
  kms_key_arn: 'arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab',
};

const BAD: ReadonlyArray<[string, unknown]> = [
  ['name', 'Sluice_Prod'],
  ['vpc_id', 'vpc-nope'],
  ['subnet_ids', []],
  ['ami_id', 'ubuntu'],
  ['release_key', 'sluice.zip'],
  ['release_sha256', 'abc'],
  ['bootstrap_token_parameter_name', 'sluice/token'],
  ['control_plane_url', 'http://sluice.internal.example.com:8443'],
  ['control_plane_ca_pem', '-----BEGIN CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n'],
  ['control_plane_cidr_blocks', ['0.0.0.0/0']],
  ['source_postgres_cidr_blocks', ['not-a-cidr']],
  ['starrocks_ports', [8030, 70000]],
  ['kms_key_arn', 'alias/sluice'],
  ['root_volume_size_gb', 4],
  ['drain_timeout_seconds', 5],
  ['log_level', 'loud'],
  ['log_retention_days', 42],
  ['https_egress_prefix_list_ids', ['sg-0123456789abcdef0']],
];

const dir = terraform.available ? mkdtempSync(path.join(tmpdir(), 'sluice-tf-variables-')) : '';
if (dir)
  copyFileSync(path.join(root, 'terraform/modules/worker/variables.tf'), path.join(dir, 'variables.tf'));
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function evaluate(values: Record<string, unknown>): { status: number | null; output: string } {
  const file = path.join(dir, 'values.tfvars.json');
  writeFileSync(file, JSON.stringify(values));
  const result = spawnSync('terraform', ['console', `-var-file=${file}`], {
    cwd: dir,
    input: 'var.name\n',
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TF_IN_AUTOMATION: '1', NO_COLOR: '1' },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('worker module variables', () => {
  it.skipIf(!terraform.available)('accept the values of a real deployment', () => {
    const result = evaluate(GOOD);
    expect(result.output).not.toContain('Invalid value for variable');
    expect(result.output).toContain('"sluice-prod"');
    expect(result.status).toBe(0);
  });

  it.skipIf(!terraform.available).each(BAD)('reject a bad %s', (name, value) => {
    const result = evaluate({ ...GOOD, [name]: value });
    expect(result.output).toContain('Invalid value for variable');
    expect(result.output).toContain(`var.${name}`);
  });
});
