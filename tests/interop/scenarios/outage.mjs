// outage --expect-close CODE: A (URL 1) and B (URL 2) sync and share a base edit, then the
// scenario prints `outage: clients ready` on stderr and waits (under the scenario deadline)
// until the servers close both connections with CODE — the calling test takes the servers'
// storage away meanwhile. A and B each edit while cut off; the stock clients must reconnect
// by themselves once the servers take clients again, re-sync, and converge holding the base
// and both offline edits.

import { ScenarioError, openClient, waitSynced, waitUntil, converged, divergence, randomText } from '../lib.mjs'

const STEP_LIMIT_MS = 15_000

export default async function outage (ctx) {
  const code = ctx.options.expectClose
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a, STEP_LIMIT_MS), waitSynced(ctx, b, STEP_LIMIT_MS)])

  ctx.step('shared base')
  const base = `base-${randomText(ctx.rng, 8)}|`
  a.doc.getText('text').insert(0, base)
  await waitUntil(ctx, 'B receives the base text', () => b.doc.getText('text').toString() === base,
    { on: [[b.doc, 'update']], limitMs: STEP_LIMIT_MS })

  ctx.step(`waiting for the servers to close A and B with ${code}`)
  console.error('outage: clients ready')
  const closedWith = (c) => c.closes.some(x => x.code === code)
  const closeMs = await waitUntil(ctx, `A and B closed with ${code}`, () => closedWith(a) && closedWith(b),
    { on: [[a.provider, 'connection-close'], [b.provider, 'connection-close']], pollMs: 50 })

  ctx.step('both edit while cut off')
  const aEdit = `A-${randomText(ctx.rng, 8)}|`
  const bEdit = `B-${randomText(ctx.rng, 8)}|`
  a.doc.getText('text').insert(0, aEdit)
  b.doc.getText('text').insert(b.doc.getText('text').length, bEdit)

  ctx.step('the clients reconnect by themselves and re-sync')
  const resyncMs = await waitUntil(ctx, 'A and B synced again', () => a.provider.synced && b.provider.synced,
    { on: [[a.provider, 'sync'], [b.provider, 'sync']], pollMs: 50 })
  const has = (doc) => [base, aEdit, bEdit].every(s => doc.getText('text').toString().includes(s))
  try {
    await waitUntil(ctx, 'A and B converge holding every edit', () => has(a.doc) && has(b.doc) && converged([a.doc, b.doc]),
      { on: [[a.doc, 'update'], [b.doc, 'update']], limitMs: STEP_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError('A and B did not converge after the outage', {
      a_has_all: has(a.doc), b_has_all: has(b.doc), docs: divergence([a.doc, b.doc])
    })
  }
  return {
    close_ms: closeMs,
    resync_ms: resyncMs,
    a_closes: a.closes,
    b_closes: b.closes,
    a_connects: a.connects,
    b_connects: b.connects,
    text: a.doc.getText('text').toString()
  }
}
