#!/usr/bin/env node
// Validates the harness against the reference server: starts it on a free loopback port, runs
// every scenario through run.mjs and checks each outcome against what the reference server is
// known to do (README.md, "Against the reference server"). Prints one line per scenario and a
// closing "N passed, N failed" line; exits 1 when any expectation failed.
//
//   node selftest.mjs [--only NAME[,NAME...]]

import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

const here = new URL('.', import.meta.url).pathname

// [scenario, extra args, expected exit code, reason pattern for expected failures]
const CASES = [
  ['converge', [], 0],
  ['late-join', [], 0],
  ['awareness', ['--skip-query-awareness'], 0],
  ['awareness', [], 1, /no awareness reply .* query-awareness/],
  ['offline', [], 0],
  ['big-update', [], 0],
  ['malformed', [], 1, /did not close 6\/6 malformed connections/],
  ['echo', [], 0],
  ['keepalive', ['--quiet-ms', '3000'], 0],
  ['auth-params', ['--token', 'selftest-token'], 0],
  ['expect-refused', ['--expect-status', '401'], 1, /upgrade succeeded/],
  ['write-doc', ['--text', 'selftest'], 0],
  ['check-doc', ['--expect-text', ''], 0],
  ['edit-loop', ['--duration-ms', '2000'], 0]
]

const { values } = parseArgs({ options: { only: { type: 'string' } } })
const only = values.only ? new Set(values.only.split(',')) : null

const startReference = () => new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [`${here}reference-server.mjs`], { stdio: ['ignore', 'pipe', 'ignore'] })
  const timer = setTimeout(() => reject(new Error('reference server did not start within 10 s')), 10_000)
  createInterface({ input: child.stdout }).once('line', (line) => {
    clearTimeout(timer)
    resolve({ child, url: JSON.parse(line).url })
  })
  child.once('exit', (code) => reject(new Error(`reference server exited with ${code}`)))
})

const runScenario = (args) => new Promise((resolve) => {
  const child = spawn(process.execPath, [`${here}run.mjs`, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.once('exit', (code) => resolve({ code, out: out.trim() }))
})

const { child: server, url } = await startReference()
let passed = 0
let failed = 0
try {
  for (const [scenario, extra, expectedCode, pattern] of CASES) {
    if (only && !only.has(scenario)) continue
    // two URLs to the same server exercise the round-robin spreading
    const { code, out } = await runScenario([scenario, '--urls', `${url},${url}`, ...extra])
    let result = null
    try { result = JSON.parse(out) } catch {}
    const lines = out.split('\n').length
    const good = code === expectedCode && result !== null && lines === 1 &&
      result.ok === (expectedCode === 0) && (!pattern || pattern.test(result.reason ?? ''))
    if (good) passed++
    else failed++
    const label = `${scenario}${extra.length ? ' ' + extra.join(' ') : ''}`
    console.log(`${good ? 'ok  ' : 'FAIL'} ${label}: exit ${code} (expected ${expectedCode})${result?.reason ? ` - ${result.reason}` : ''}`)
    if (!good) console.log(`     output: ${out.slice(0, 2000)}`)
  }
} finally {
  server.kill('SIGTERM')
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
