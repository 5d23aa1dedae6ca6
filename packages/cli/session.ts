// The login session: access and refresh tokens kept in `<state dir>/session.json` (mode 0600, directory
// 0700), refreshed with the refresh token when the access token is about to expire. The password is never
// stored; tokens are never printed.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

export interface Session {
  version: 1;
  /** The control plane these tokens belong to, https://host:port. */
  controlPlane: string;
  /** Absolute path of the CA file used at login, reused by later commands. */
  caFile?: string;
  username: string;
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
}

/** `--state-dir` / SLUICE_STATE_DIR, else $XDG_CONFIG_HOME/sluice, else ~/.config/sluice. */
export function stateDirectory(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return path.resolve(flag);
  const config = env.XDG_CONFIG_HOME || path.join(env.HOME || homedir(), '.config');
  return path.join(config, 'sluice');
}

export function sessionFile(stateDir: string): string {
  return path.join(stateDir, 'session.json');
}

export async function loadSession(stateDir: string): Promise<Session | undefined> {
  let text: string;
  try {
    text = await readFile(sessionFile(stateDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const session = JSON.parse(text) as Session;
    return session.version === 1 && typeof session.refreshToken === 'string' ? session : undefined;
  } catch {
    return undefined;
  }
}

/** Written to a private temporary file and renamed, so a reader never sees half a session. */
export async function saveSession(stateDir: string, session: Session): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = sessionFile(stateDir);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
}
