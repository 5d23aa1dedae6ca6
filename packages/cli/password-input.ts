// Credentials enter the CLI from a file (`--password-file`, `-` for stdin) or from a prompt that does not
// echo — never from an argument, where `ps` and shell history would keep them.
import { readFile } from 'node:fs/promises';
import { Secret } from '@sluice/crypto';
import { CliError, EXIT, usageError } from './cli-error.ts';

/** Reads a secret from `file` (one trailing newline dropped) or prompts for it on the terminal. */
export async function readPassword(file: string | undefined, prompt: string): Promise<Secret<string>> {
  let text: string;
  if (file === '-') text = await readStdin();
  else if (file !== undefined) {
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw usageError(
        `cannot read password file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  } else if (process.stdin.isTTY) {
    text = await promptHidden(prompt);
  } else {
    throw usageError('no terminal to prompt on: pass --password-file FILE (or - for stdin)');
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw usageError(file ? `password file ${file} is empty` : 'empty password');
  return Secret.of(value);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const finish = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003') return finish(new CliError('interrupted', 130));
        if (char === '\u0004') return finish();
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else value += char;
      }
    };
    stdin.on('data', onData);
  });
}

export { EXIT };
