// auth-params: providers connect with `params: { token }` (--token) and sync; an edit by A reaches
// B. expect-refused: a provider's connection must be refused before the upgrade; the `ws`
// polyfill reports the HTTP status in its error ("Unexpected server response: 401"), which is
// reported as `status` and checked against --expect-status when given.

import { ScenarioError, openClient, waitSynced, waitUntil, randomText } from '../lib.mjs'

const STEP_LIMIT_MS = 5000

const redacted = (url) => url.replace(/token=[^&]*/, 'token=<redacted>')

async function authParams (ctx) {
  ctx.step('connect with token')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  if (!a.provider.url.includes('token=')) throw new ScenarioError('provider URL carries no token parameter')
  const syncMs = Math.max(...await Promise.all([waitSynced(ctx, a, STEP_LIMIT_MS), waitSynced(ctx, b, STEP_LIMIT_MS)]))
  ctx.step('A edits; B receives')
  const marker = randomText(ctx.rng, 16)
  a.doc.getText('text').insert(0, marker)
  const editMs = await waitUntil(ctx, 'B receives A\'s edit', () => b.doc.getText('text').toString() === marker,
    { on: [[b.doc, 'update']], limitMs: STEP_LIMIT_MS })
  return { url: redacted(a.provider.url), sync_ms: syncMs, edit_ms: editMs, errors: a.errors.length + b.errors.length }
}

async function expectRefused (ctx) {
  const expectStatus = ctx.options.expectStatus
  ctx.step('connect and expect refusal')
  const c = openClient(ctx, 'A', { connect: false })
  let connected = false
  let terminal = null
  c.provider.on('status', ({ status }) => { if (status === 'connected') connected = true })
  c.provider.on('closed', (event) => { terminal = event })
  c.provider.connect()
  const ms = await waitUntil(ctx, 'a connection error or an upgrade', () => c.errors.length > 0 || connected,
    { on: [[c.provider, 'connection-error'], [c.provider, 'status']], limitMs: STEP_LIMIT_MS })
  if (connected) {
    // Give a server that upgrades and then closes the chance to say so, for the report.
    await waitUntil(ctx, 'close after upgrade', () => c.closes.length > 0, { on: [[c.provider, 'connection-close']], limitMs: 1000 })
      .catch(err => { if (!(err instanceof ScenarioError)) throw err })
    const closes = [...c.closes]
    c.provider.destroy()
    throw new ScenarioError('the upgrade succeeded: the connection was not refused before the upgrade', {
      closes_after_upgrade: closes, terminal_close: terminal
    })
  }
  c.provider.destroy()
  const message = c.errors[0].message
  const m = /Unexpected server response: (\d{3})/.exec(message)
  const status = m ? Number(m[1]) : null
  if (status === null) throw new ScenarioError(`connection failed without an HTTP status: ${message}`, { status })
  if (expectStatus !== undefined && status !== expectStatus) {
    throw new ScenarioError(`refused with HTTP ${status}, expected ${expectStatus}`, { status })
  }
  return { status, error: message, refused_ms: ms, url: redacted(c.provider.url) }
}

export const scenarios = { 'auth-params': authParams, 'expect-refused': expectRefused }
