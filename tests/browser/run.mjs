#!/usr/bin/env node
// Runs one browser scenario against yws gateways and prints ONE JSON line.
//
//   node run.mjs landing   --urls http://127.0.0.1:P --artifacts DIR [--expect-demo true|false] [--shot NAME]
//   node run.mjs demo-pair --urls http://127.0.0.1:P,http://127.0.0.1:Q --artifacts DIR [--room NAME]
//   node run.mjs admin     --urls http://127.0.0.1:P --artifacts DIR --room NAME --token T --text T [--nodes N]
//   common: [--timeout-ms N] (default 90000)
//
// Exit codes: 0 ok, 1 failed expectation, 2 timeout, 64 usage error. Only loopback URLs are
// accepted; the browser aborts any request that would leave the machine.
import { parseArgs } from 'node:util'
import { ScenarioError, isLoopback } from './lib.mjs'

// Keep stdout for the single result line.
console.log = console.error.bind(console)

const SCENARIOS = {
  landing: './scenarios/landing.mjs',
  'demo-pair': './scenarios/demo-pair.mjs',
  admin: './scenarios/admin.mjs'
}
const EXIT = { ok: 0, failed: 1, timeout: 2, usage: 64 }
const name = process.argv[2]

function finish (code, fields) {
  process.stdout.write(JSON.stringify({ scenario: name, ok: code === EXIT.ok, ...fields }) + '\n', () => process.exit(code))
}

let options
try {
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: {
      urls: { type: 'string' },
      artifacts: { type: 'string' },
      room: { type: 'string', default: `demo-${process.pid}` },
      'expect-demo': { type: 'string', default: 'true' },
      shot: { type: 'string', default: 'landing' },
      token: { type: 'string' },
      text: { type: 'string' },
      nodes: { type: 'string', default: '1' },
      'timeout-ms': { type: 'string', default: '90000' }
    }
  })
  const urls = (values.urls ?? '').split(',').filter(Boolean).map((u) => u.replace(/\/$/, ''))
  if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}`)
  if (!urls.length || !urls.every(isLoopback)) throw new Error('--urls must be loopback http URLs')
  if (!values.artifacts) throw new Error('--artifacts DIR is required')
  if (!['true', 'false'].includes(values['expect-demo'])) throw new Error('--expect-demo is true or false')
  options = {
    urls,
    artifacts: values.artifacts,
    room: values.room,
    expectDemo: values['expect-demo'] === 'true',
    shot: values.shot,
    token: values.token,
    text: values.text,
    nodes: Number(values.nodes),
    timeoutMs: Number(values['timeout-ms'])
  }
} catch (e) {
  finish(EXIT.usage, { reason: `usage: ${e.message}` })
}

if (options) {
  const timer = setTimeout(() => finish(EXIT.timeout, { reason: `no result within ${options.timeoutMs} ms` }), options.timeoutMs)
  try {
    const { run } = await import(SCENARIOS[name])
    const result = await run(options)
    clearTimeout(timer)
    finish(EXIT.ok, result)
  } catch (e) {
    clearTimeout(timer)
    const details = e instanceof ScenarioError ? e.details : { stack: e.stack }
    finish(EXIT.failed, { reason: e.message, ...details })
  }
}
