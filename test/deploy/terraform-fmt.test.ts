import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { announceSkip, terraformTool } from './tools.ts';

const root = path.resolve(import.meta.dirname, '../..');
const terraform = terraformTool();
announceSkip('terraform fmt -check', terraform);

describe('terraform formatting', () => {
  it.skipIf(!terraform.available)(
    'terraform fmt -check -recursive passes on terraform/ and the policy fixtures',
    () => {
      for (const dir of ['terraform', 'test/deploy/fixtures']) {
        const result = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff', dir], {
          cwd: root,
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(result.error).toBeUndefined();
        expect({ dir, status: result.status, diff: result.stdout }).toEqual({ dir, status: 0, diff: '' });
      }
    },
  );
});
