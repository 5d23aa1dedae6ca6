// `sluice admin create`: the first admin, written into the catalog directly — no API call can create a
// user before an admin exists. Refused once any admin exists.
import { createLogger } from '@sluice/crypto';
import { type CommandSpec, stringFlag } from '../command-table.ts';
import { CATALOG_FLAGS, catalogSource, stderrLog } from '../offline-catalog.ts';
import { printJson, println } from '../output.ts';
import { readPassword } from '../password-input.ts';

export const adminCommand: CommandSpec = {
  name: 'admin',
  summary: 'Bootstrap the first administrator',
  subcommands: [
    {
      name: 'create',
      summary: 'Create the first admin user directly in the catalog (refused once an admin exists)',
      description:
        'Runs offline against the catalog the control plane uses: DATABASE_URL[_FILE], or the embedded\n' +
        'catalog under --data-dir. Further users are created through the API by this admin.',
      flags: {
        username: {
          type: 'string',
          value: 'NAME',
          env: 'SLUICE_ADMIN_USERNAME',
          required: true,
          description: 'login name of the admin',
        },
        'password-file': {
          type: 'string',
          value: 'FILE',
          env: 'SLUICE_ADMIN_PASSWORD_FILE',
          description: 'read the password (at least 12 characters) from FILE; prompts when absent',
        },
        ...CATALOG_FLAGS,
      },
      examples: [
        'DATABASE_URL_FILE=/run/secrets/catalog_url sluice admin create --username admin --password-file pw',
      ],
      async run(context) {
        const username = stringFlag(context.flags, 'username')!;
        const source = catalogSource(context.flags, context.env);
        const password = await readPassword(
          stringFlag(context.flags, 'password-file'),
          `New password for ${username}: `,
        );
        const logger = createLogger('admin-create', {
          level: context.env.SLUICE_LOG_LEVEL || 'warn',
          destination: stderrLog,
        });
        const { createFirstAdmin, openCatalog } = await import('@sluice/control-plane');
        const catalog = await openCatalog(source, logger);
        try {
          const user = await password.useOnce((value) =>
            createFirstAdmin(catalog.pool, { username, password: value }),
          );
          if (context.json)
            printJson(context, { user: { id: user.id, username: user.username, role: 'admin' } });
          else println(context, `admin ${user.username} created (${user.id})`);
        } finally {
          await catalog.close();
        }
        return 0;
      },
    },
  ],
};
