// offline: A and B are synced; A goes offline (provider.disconnect()), both edit, A reconnects
// (provider.connect()); both docs converge and contain both edits.

import { ScenarioError, openClient, waitSynced, waitUntil, converged, divergence, randomText } from '../lib.mjs'

const STEP_LIMIT_MS = 5000

export default async function offline (ctx) {
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a), waitSynced(ctx, b)])

  ctx.step('shared base')
  a.doc.getText('text').insert(0, 'base|')
  await waitUntil(ctx, 'B receives the base text', () => b.doc.getText('text').toString() === 'base|',
    { on: [[b.doc, 'update']], limitMs: STEP_LIMIT_MS })

  ctx.step('A offline; both edit')
  a.provider.disconnect()
  if (a.provider.wsconnected || a.provider.ws !== null) throw new ScenarioError('A still connected after disconnect()')
  const aEdit = `A-offline-${randomText(ctx.rng, 8)}`
  const bEdit = `B-online-${randomText(ctx.rng, 8)}`
  a.doc.getText('text').insert(0, aEdit)
  a.doc.getMap('map').set('a', aEdit)
  b.doc.getText('text').insert(b.doc.getText('text').length, bEdit)
  b.doc.getMap('map').set('b', bEdit)
  const bFramesOffline = b.frames.length

  ctx.step('A reconnects')
  const t0 = performance.now()
  a.provider.connect()
  const resyncMs = await waitSynced(ctx, a, STEP_LIMIT_MS)
  const has = (doc) => {
    const text = doc.getText('text').toString()
    const map = doc.getMap('map')
    return text.includes(aEdit) && text.includes(bEdit) && map.get('a') === aEdit && map.get('b') === bEdit
  }
  try {
    await waitUntil(ctx, 'A and B hold both edits and converge',
      () => has(a.doc) && has(b.doc) && converged([a.doc, b.doc]),
      { on: [[a.doc, 'update'], [b.doc, 'update']], limitMs: STEP_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError('A and B did not converge after A reconnected', {
      a_has_both: has(a.doc), b_has_both: has(b.doc), docs: divergence([a.doc, b.doc])
    })
  }
  return {
    resync_ms: resyncMs,
    converge_after_reconnect_ms: Math.round((performance.now() - t0) * 10) / 10,
    a_connects: a.connects,
    b_frames_since_a_offline: b.frames.length - bFramesOffline,
    text: a.doc.getText('text').toString()
  }
}
