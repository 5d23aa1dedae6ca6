// `sluice login`: exchanges a user name and password (file or prompt) for tokens kept in the session file.
import { createClient } from '@connectrpc/connect';
import { AuthService, Role } from '@sluice/proto';
import { endpointFromFlags, isoOf, transportFor } from '../client.ts';
import type { CommandSpec } from '../command-table.ts';
import { stringFlag } from '../command-table.ts';
import { enumWord, printJson, println } from '../output.ts';
import { readPassword } from '../password-input.ts';
import { saveSession, sessionFile, stateDirectory } from '../session.ts';

export const loginCommand: CommandSpec = {
  name: 'login',
  summary: 'Log in to a control plane and keep the session (tokens, never the password)',
  description:
    'The session is written to <state dir>/session.json (mode 0600) with the control plane URL and CA file,\n' +
    'so later commands need neither. The access token is refreshed automatically.',
  flags: {
    username: { type: 'string', value: 'NAME', required: true, description: 'login name' },
    'password-file': {
      type: 'string',
      value: 'FILE',
      description: 'read the password from FILE (- for stdin); prompts without echo when absent',
    },
  },
  examples: [
    'sluice login --control-plane https://cp.example:8443 --ca-file ca.crt --username admin',
    'sluice login --username admin --password-file /run/secrets/admin_password',
  ],
  async run(context) {
    const endpoint = endpointFromFlags(context);
    const stateDir = stateDirectory(stringFlag(context.flags, 'state-dir'), context.env);
    const username = stringFlag(context.flags, 'username')!;
    const password = await readPassword(
      stringFlag(context.flags, 'password-file'),
      `Password for ${username}: `,
    );
    const auth = createClient(AuthService, transportFor(endpoint));
    const answer = await password.useOnce((value) => auth.login({ username, password: value }));
    await saveSession(stateDir, {
      version: 1,
      controlPlane: endpoint.url,
      ...(endpoint.caFile && { caFile: endpoint.caFile }),
      username,
      accessToken: answer.accessToken,
      accessTokenExpiresAt: isoOf(answer.accessTokenExpiresAt),
      refreshToken: answer.refreshToken,
      refreshTokenExpiresAt: isoOf(answer.refreshTokenExpiresAt),
    });
    const role = enumWord(Role, answer.user?.role ?? 0);
    if (context.json) {
      // The user only: tokens stay in the session file.
      const user = answer.user;
      printJson(context, {
        controlPlane: endpoint.url,
        user: user ? { id: user.id, username: user.username, role } : null,
        sessionFile: sessionFile(stateDir),
        refreshTokenExpiresAt: isoOf(answer.refreshTokenExpiresAt),
      });
    } else {
      println(
        context,
        `logged in to ${endpoint.url} as ${username} (${role}); session in ${sessionFile(stateDir)}`,
      );
    }
    return 0;
  },
};
