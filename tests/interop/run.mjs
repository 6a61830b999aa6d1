#!/usr/bin/env node
// Runs one interop scenario with the stock y-websocket client and prints ONE JSON line.
//
//   node run.mjs <scenario> --urls ws://127.0.0.1:P1[,ws://127.0.0.1:P2,...] [--room NAME]
//     [--token T] [--timeout-ms N] [--client 3] [--seed N] [--quiet-ms N] [--expect-status N]
//     [--skip-query-awareness] [--text T] [--expect-text T] [--kill-pid PID] [--hold-ms N]
//     [--expect-close CODE] [--duration-ms N]
//
// Exit codes: 0 ok, 1 failed expectation, 2 timeout, 64 usage error. See README.md.

import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { Context, ScenarioError, TimeoutError } from './lib.mjs'

// Keep stdout for the single result line: libraries that log go to stderr.
console.log = console.error.bind(console)
console.info = console.error.bind(console)

const SCENARIOS = {
  converge: './scenarios/converge.mjs',
  'late-join': './scenarios/late-join.mjs',
  awareness: './scenarios/awareness.mjs',
  offline: './scenarios/offline.mjs',
  'big-update': './scenarios/big-update.mjs',
  malformed: './scenarios/malformed.mjs',
  echo: './scenarios/echo.mjs',
  keepalive: './scenarios/keepalive.mjs',
  'auth-params': './scenarios/auth.mjs',
  'expect-refused': './scenarios/auth.mjs',
  'write-doc': './scenarios/doc.mjs',
  'check-doc': './scenarios/doc.mjs',
  failover: './scenarios/failover.mjs',
  'awareness-failover': './scenarios/failover.mjs',
  outage: './scenarios/outage.mjs',
  'edit-loop': './scenarios/edit-loop.mjs',
  held: './scenarios/held.mjs'
}

const DEFAULT_TIMEOUT_MS = 20_000
const CLEANUP_GRACE_MS = 3_000
const EXIT = { ok: 0, failed: 1, timeout: 2, usage: 64 }

let finished = false
let scenarioName = process.argv[2] ?? null
let ctx = null

/** Prints the result line once, cleans up under a grace timeout, and exits. */
const finish = async (code, fields) => {
  if (finished) return
  finished = true
  const line = JSON.stringify({ scenario: scenarioName, ok: code === EXIT.ok, ...fields })
  setTimeout(() => process.exit(code), CLEANUP_GRACE_MS).unref()
  process.stdout.write(line + '\n')
  if (ctx) await ctx.cleanup()
  process.stdout.write('', () => process.exit(code))
}

const usage = (reason) => finish(EXIT.usage, {
  reason: `usage: ${reason}; run.mjs <${Object.keys(SCENARIOS).join('|')}> --urls ws://127.0.0.1:P[,...] [--room NAME] [--token T] [--timeout-ms N] [--client 3] [--seed N] [--quiet-ms N] [--expect-status N] [--skip-query-awareness] [--text T] [--expect-text T] [--kill-pid PID] [--hold-ms N] [--expect-close CODE] [--duration-ms N]`
})

const parse = () => {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      urls: { type: 'string' },
      room: { type: 'string' },
      token: { type: 'string' },
      'timeout-ms': { type: 'string' },
      client: { type: 'string', default: '3' },
      seed: { type: 'string' },
      'quiet-ms': { type: 'string', default: '35000' },
      'expect-status': { type: 'string' },
      'skip-query-awareness': { type: 'boolean', default: false },
      text: { type: 'string' },
      'expect-text': { type: 'string' },
      'kill-pid': { type: 'string' },
      'hold-ms': { type: 'string' },
      'expect-close': { type: 'string' },
      'duration-ms': { type: 'string' }
    }
  })
  if (positionals.length !== 1) throw new Error('exactly one scenario expected')
  scenarioName = positionals[0]
  if (!(scenarioName in SCENARIOS)) throw new Error(`unknown scenario "${scenarioName}"`)
  if (!values.urls) throw new Error('--urls is required')
  const urls = values.urls.split(',').map(s => s.trim()).filter(Boolean)
  for (const u of urls) {
    const parsed = new URL(u)
    if (!/^wss?:$/.test(parsed.protocol)) throw new Error(`not a ws:// URL: ${u}`)
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname) && !parsed.hostname.startsWith('127.')) {
      throw new Error(`refusing non-loopback URL ${u}`)
    }
  }
  if (values.client === '4') {
    throw new Error('--client 4 is not available: @y/websocket 4.x needs @y/y (Yjs 14) documents and fails on Yjs 13 documents (see README.md)')
  }
  if (values.client !== '3') throw new Error(`--client must be 3, got ${values.client}`)
  const int = (name, raw, min) => {
    if (raw === undefined) return undefined
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`)
    return n
  }
  if (scenarioName === 'auth-params' && values.token === undefined) throw new Error('auth-params needs --token')
  const required = { 'write-doc': 'text', 'check-doc': 'expect-text', failover: 'kill-pid', 'awareness-failover': 'kill-pid', outage: 'expect-close', held: 'expect-close' }
  if (required[scenarioName] && values[required[scenarioName]] === undefined) throw new Error(`${scenarioName} needs --${required[scenarioName]}`)
  const killPid = int('kill-pid', values['kill-pid'], 2)
  const holdMs = int('hold-ms', values['hold-ms'], 0)
  const expectClose = int('expect-close', values['expect-close'], 1000)
  const quietMs = int('quiet-ms', values['quiet-ms'], 0)
  const expectStatus = int('expect-status', values['expect-status'], 100)
  const durationMs = int('duration-ms', values['duration-ms'], 1)
  const seed = int('seed', values.seed, 0) ?? randomBytes(4).readUInt32LE(0)
  // keepalive waits --quiet-ms by design; its default deadline leaves 20 s on top of that.
  const timeoutMs = int('timeout-ms', values['timeout-ms'], 1) ??
    (scenarioName === 'keepalive' ? quietMs + DEFAULT_TIMEOUT_MS : DEFAULT_TIMEOUT_MS)
  const room = values.room ?? `interop-${scenarioName}-${randomBytes(6).toString('hex')}`
  if (!/^[A-Za-z0-9._~-]+$/.test(room)) throw new Error('--room may only contain [A-Za-z0-9._~-]')
  return {
    scenario: scenarioName,
    urls,
    room,
    token: values.token ?? null,
    timeoutMs,
    seed,
    options: {
      quietMs,
      expectStatus,
      skipQueryAwareness: values['skip-query-awareness'],
      text: values.text,
      expectText: values['expect-text'],
      killPid,
      holdMs,
      expectClose,
      durationMs
    }
  }
}

process.on('uncaughtException', (err) => {
  finish(EXIT.failed, { reason: `uncaught exception in phase ${ctx?.phase}: ${err?.stack ?? err}` })
})
process.on('unhandledRejection', (err) => {
  finish(EXIT.failed, { reason: `unhandled rejection in phase ${ctx?.phase}: ${err?.stack ?? err}` })
})

let config
try {
  config = parse()
} catch (err) {
  await usage(err.message)
}

if (config) {
  ctx = new Context(config)
  const common = () => ({ room: ctx.room, urls: ctx.urls, client: 3, seed: ctx.seed, duration_ms: ctx.elapsed() })
  // Hard guard: whatever hangs, the process exits.
  setTimeout(() => process.exit(EXIT.timeout), config.timeoutMs + CLEANUP_GRACE_MS * 2).unref()
  const deadline = setTimeout(() => {
    finish(EXIT.timeout, { ...common(), reason: `timeout after ${config.timeoutMs} ms in phase "${ctx.phase}"` })
  }, config.timeoutMs)
  try {
    const mod = await import(SCENARIOS[config.scenario])
    const run = mod.scenarios?.[config.scenario] ?? mod.default
    const figures = await run(ctx)
    clearTimeout(deadline)
    await finish(EXIT.ok, { ...common(), ...figures })
  } catch (err) {
    clearTimeout(deadline)
    if (err instanceof TimeoutError) {
      await finish(EXIT.timeout, { ...common(), reason: `${err.message} (phase "${ctx.phase}")` })
    } else if (err instanceof ScenarioError) {
      await finish(EXIT.failed, { ...common(), reason: err.message, ...err.details })
    } else {
      await finish(EXIT.failed, { ...common(), reason: `error in phase "${ctx.phase}": ${err?.stack ?? err}` })
    }
  }
}

