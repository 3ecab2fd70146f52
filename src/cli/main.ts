// The `sluice` command: dispatch to a subcommand. Exit codes: 0 ok, 1 failure, 2 usage error.
import { jsonSchema } from '../config/jsonschema.ts'
import { SluiceError } from '../errors.ts'
import { version } from '../version.ts'
import { exitCode, parse, print, printError } from './args.ts'
import { check, checkHelp } from './check.ts'
import { demo, demoHelp } from './demo.ts'
import { proxy, proxyHelp } from './proxy.ts'
import { run, runHelp } from './run.ts'
import { test, testHelp } from './test.ts'

const help = `sluice ${version}: a proxy for service-to-service traffic

Usage: sluice <command> [options]

Commands:
  run        run the proxy from a config file (sluice YAML/JSON/TOML, Fly.io JSON, tcpproxy YAML)
  proxy      forward "PORT=HOST:PORT" mappings with faults, as fault's command line does
  check      validate a config file and print it normalised, with the plan it would apply
  schema     print the JSON Schema of sluice's config format (for editor completion)
  demo       start backends and sluice in front of them, and show it working
  test       ping | balancer | simulate | serve: check a proxy from the outside
  version    print the version

Run "sluice <command> --help" for a command's options.
`

const schemaHelp = `Usage: sluice schema

Print the JSON Schema of sluice's own config format (for editor completion and validation).
`
const versionHelp = 'Usage: sluice version\n\nPrint the version.\n'

/** A command without options: --help prints its help, anything else is a usage error. */
function plain(name: string, argv: string[], helpText: string, output: () => string): number {
  const { values } = parse(name, argv, {})
  return print(values.help ? helpText : output())
}

const commands: Record<string, [(argv: string[]) => Promise<number | null> | number | null, string]> = {
  run: [run, runHelp],
  proxy: [proxy, proxyHelp],
  check: [check, checkHelp],
  demo: [demo, demoHelp],
  test: [test, testHelp],
  schema: [
    (argv) => plain('schema', argv, schemaHelp, () => `${JSON.stringify(jsonSchema(), null, 2)}\n`),
    schemaHelp,
  ],
  version: [(argv) => plain('version', argv, versionHelp, () => `${version}\n`), versionHelp],
}

/** Run the CLI; resolves with an exit code, or null when the command keeps running (servers). */
export async function main(argv: string[]): Promise<number | null> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help)
    return name ? 0 : 2
  }
  if (name === '--version' || name === '-v') return commands.version![0](rest)
  const command = commands[name]
  if (!command) {
    printError(new SluiceError('ERR_USAGE', `unknown command "${name}" (run "sluice --help")`))
    return 2
  }
  try {
    return await command[0](rest)
  } catch (err) {
    printError(err)
    return exitCode(err)
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code !== null) process.exitCode = code
})
