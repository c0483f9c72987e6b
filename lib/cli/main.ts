#!/usr/bin/env node
/**
 * The package's command line: `monkeyslegion-session <command>`.
 *   publish-config [--dir <folder>] [--force]       write session.config.ts (never overwrites without --force)
 *   gc                                              garbage-collect the configured store, print the count
 *   migration --dialect postgres|mysql|sqlite [--table <name>]   print the sessions table SQL
 * `gc` reads the same environment variables as the published config (SESSION_DRIVER, …).
 */
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DriverFactory } from '../drivers/driver.factory.js';
import { sessionOptionsFromEnv } from '../session-env.config.js';
import { createSessionsTableSql, type SessionsTableDialect } from '../../migrations/create-sessions-table.migration.js';
import { SESSION_CONFIG_TEMPLATE } from './session-config.template.js';

const USAGE = `usage: monkeyslegion-session <command>
  publish-config [--dir <folder>] [--force]      write session.config.ts into <folder> (default ./src/config)
  gc                                             run garbage collection for the driver set by SESSION_DRIVER (default file)
  migration --dialect postgres|mysql|sqlite [--table sessions]   print the SQL that creates the sessions table`;

export async function runCli(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'publish-config': {
      const { values } = parseArgs({ args: rest, options: { dir: { type: 'string', default: './src/config' }, force: { type: 'boolean', default: false } } });
      const dir = resolve(values.dir!);
      const file = join(dir, 'session.config.ts');
      if (existsSync(file) && !values.force) {
        out(`${file} already exists; not overwritten (use --force to replace it).`);
        return 1;
      }
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, SESSION_CONFIG_TEMPLATE);
      out(`wrote ${file}`);
      return 0;
    }
    case 'gc': {
      parseArgs({ args: rest, options: {} });
      const options = { driver: 'file' as const, ...sessionOptionsFromEnv() };
      const driver = await DriverFactory.create(options);
      await driver.open();
      try {
        const removed = await driver.gc();
        out(`removed ${removed} expired session(s) from the ${typeof options.driver === 'string' ? options.driver : 'custom'} store`);
      } finally {
        await driver.close();
      }
      return 0;
    }
    case 'migration': {
      const { values } = parseArgs({ args: rest, options: { dialect: { type: 'string' }, table: { type: 'string', default: 'sessions' } } });
      const dialect = values.dialect;
      if (dialect !== 'postgres' && dialect !== 'mysql' && dialect !== 'sqlite') {
        out('--dialect must be postgres, mysql or sqlite');
        return 2;
      }
      out(createSessionsTableSql(dialect as SessionsTableDialect, values.table).map((s) => s.trim().replace(/;?$/, ';')).join('\n\n'));
      return 0;
    }
    default:
      out(USAGE);
      return command === undefined || command === '--help' || command === 'help' ? 0 : 2;
  }
}

/**
 * True when this file is the process's entry point (the bin), not a module imported by tests.
 * npm installs the bin as a symlink (node_modules/.bin/monkeyslegion-session) and Node keeps that
 * path in argv[1] while loading the real file, so compare real paths, not names.
 */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`monkeyslegion-session: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
