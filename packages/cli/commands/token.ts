// `sluice token create`: a single-use bootstrap token for registering a worker. Its value is shown once.
import { writeFile } from 'node:fs/promises';
import { BootstrapTokenService, CreateBootstrapTokenResponseSchema } from '@sluice/proto';
import { usageError } from '../cli-error.ts';
import { connect } from '../client.ts';
import { type CommandSpec, listFlag, stringFlag } from '../command-table.ts';
import { parseDuration } from '../durations.ts';
import { messageJson, printJson, println, when } from '../output.ts';

export const tokenCommand: CommandSpec = {
  name: 'token',
  summary: 'Bootstrap tokens that let a new worker register',
  subcommands: [
    {
      name: 'create',
      summary: 'Create a single-use bootstrap token (admin); its value is shown once',
      description:
        'With --json the answer is CreateBootstrapTokenResponse: the value is in "secret", the record in "token".\n' +
        'With --output the value goes to a new 0600 file instead of stdout.',
      flags: {
        ttl: {
          type: 'string',
          value: 'DURATION',
          default: '15m',
          description: 'lifetime, e.g. 900s, 15m, 1h (max 24h)',
        },
        description: { type: 'string', value: 'TEXT', description: 'free text, at most 200 characters' },
        label: { type: 'string', value: 'KEY=VALUE', multiple: true, description: 'label for the worker' },
        output: {
          type: 'string',
          value: 'FILE',
          description: 'write the value to FILE (mode 0600) instead of stdout',
        },
      },
      examples: ['sluice token create --ttl 15m --json', 'sluice token create --output worker-1.token'],
      async run(context) {
        const ttlSeconds = Math.round(
          parseDuration('--ttl', stringFlag(context.flags, 'ttl') ?? '15m', 1_000, 86_400_000) / 1000,
        );
        const labels: Record<string, string> = {};
        for (const pair of listFlag(context.flags, 'label')) {
          const match = /^([^=]+)=(.*)$/.exec(pair);
          if (!match) throw usageError(`--label ${JSON.stringify(pair)} must be KEY=VALUE`);
          labels[match[1]!] = match[2]!;
        }
        const connection = await connect(context);
        const answer = await connection.client(BootstrapTokenService).createBootstrapToken({
          ttlSeconds,
          description: stringFlag(context.flags, 'description') ?? '',
          labels,
        });
        const output = stringFlag(context.flags, 'output');
        if (output) await writeFile(output, answer.secret, { mode: 0o600, flag: 'wx' });
        if (context.json) {
          const json = messageJson(CreateBootstrapTokenResponseSchema, answer) as Record<string, unknown>;
          if (output) json.secret = '';
          printJson(context, output ? { ...json, output } : json);
        } else if (output) {
          println(
            context,
            `token ${answer.token?.id} written to ${output}; expires ${when(answer.token?.expiresAt)}`,
          );
        } else {
          context.stderr.write(
            `token ${answer.token?.id}, single use, expires ${when(answer.token?.expiresAt)}:\n`,
          );
          println(context, answer.secret);
        }
        return 0;
      },
    },
  ],
};
