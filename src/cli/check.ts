// `sluice check`: validate a config file, print it normalised (every default explicit, in sluice's
// own format) and the plan it would apply to an empty start. Exit 1 on any error.
import { stringify } from 'yaml'
import { checkConfigFiles, configFile, configLookup, loadConfigFile } from '../config/load.ts'
import { describePlan, plan } from '../config/plan.ts'
import { toDocument } from '../config/print.ts'
import { parse, printError } from './args.ts'

export const checkHelp = `Usage: sluice check [-c FILE] [--json]

Validate a config file (sluice's format, Fly.io JSON or tcpproxy YAML) without starting anything.
Prints the normalised config in sluice's own format, with every default made explicit, and the
plan it would apply. Exits 1 and names the file, line, field and reason of every problem, and
every certificate, key or CA file a tunnel names that is missing or does not parse.

  -c, --config FILE   config file (default: ${configLookup})
      --json          print the result as JSON
`

export function check(argv: string[]): number {
  const { values } = parse('check', argv, {
    config: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
  })
  if (values.help) {
    process.stdout.write(checkHelp)
    return 0
  }
  const file = configFile(values.config)
  try {
    const { config, syntax, text } = loadConfigFile(file)
    checkConfigFiles(config, text)
    const steps = describePlan(plan(null, config))
    const doc = toDocument(config)
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ file, format: config.source.format, syntax, config: doc, plan: steps }, null, 2)}\n`,
      )
    } else {
      process.stdout.write(`# ${file}: valid (${config.source.format} format, ${syntax})\n`)
      process.stdout.write(`# normalised, every default explicit:\n${stringify(doc)}`)
      process.stdout.write(`# plan from an empty start:\n${steps.map((s) => `#   ${s}`).join('\n')}\n`)
    }
    return 0
  } catch (err) {
    printError(err)
    return 1
  }
}
