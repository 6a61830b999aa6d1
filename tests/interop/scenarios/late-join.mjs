// late-join: A writes known content in one transaction and waits until the server echoed that
// update back to A (seen in A's incoming frames); A leaves (destroy). B then joins (on the next
// URL) and must hold exactly A's content at the moment its `synced` event fires.

import {
  ScenarioError, Y, openClient, waitSynced, waitUntil, content, canonical, stateVector,
  randomText, bytesEqual, MSG, SYNC, frameSummary
} from '../lib.mjs'

const TEXT_LEN = 16 * 1024
const MAP_ENTRIES = 32

/**
 * Whether a received update payload carries exactly `update`: byte-identical, or (when the server
 * re-encodes) equivalent — applying either to an empty doc gives the same state and content.
 */
export const matchUpdate = (payload, update) => {
  if (bytesEqual(payload, update)) return 'identical'
  try {
    const a = new Y.Doc()
    const b = new Y.Doc()
    Y.applyUpdate(a, payload)
    Y.applyUpdate(b, update)
    const same = canonical(stateVector(a)) === canonical(stateVector(b)) &&
      canonical(content(a)) === canonical(content(b))
    a.destroy()
    b.destroy()
    return same ? 'equivalent' : null
  } catch {
    return null
  }
}

/** Resolves with `{ ms, match }` once `client` received a sync update frame carrying `update`. */
export const waitEcho = async (ctx, client, update, from, limitMs) => {
  let match = null
  const ms = await waitUntil(ctx, `${client.name} receives the echo of its update`, () => {
    for (let i = from; i < client.frames.length && !match; i++) {
      const f = client.frames[i]
      if (f.type === MSG.sync && f.sub === SYNC.update) match = matchUpdate(f.payload, update)
    }
    return match !== null
  }, { on: [[client.tap, 'frame']], limitMs })
  return { ms, match }
}

export default async function lateJoin (ctx) {
  ctx.step('A connects')
  const a = openClient(ctx, 'A')
  await waitSynced(ctx, a)

  ctx.step('A writes')
  let update = null
  a.doc.once('update', u => { update = u })
  const from = a.frames.length
  a.doc.transact(() => {
    a.doc.getText('text').insert(0, `late-join ${ctx.room}\n${randomText(ctx.rng, TEXT_LEN)}`)
    const map = a.doc.getMap('map')
    for (let i = 0; i < MAP_ENTRIES; i++) map.set(`key${i}`, { i, s: randomText(ctx.rng, 8) })
  })
  if (update === null) throw new ScenarioError('A produced no update')

  ctx.step('A waits for the echo')
  let echo
  try {
    echo = await waitEcho(ctx, a, update, from, 5000)
  } catch (err) {
    if (err instanceof ScenarioError) {
      throw new ScenarioError('server did not echo A\'s update back to A within 5000 ms', { a_frames: frameSummary(a.frames.slice(from)) })
    }
    throw err
  }
  const expected = { sv: canonical(stateVector(a.doc)), content: canonical(content(a.doc)) }
  a.provider.destroy()

  ctx.step('B joins')
  const b = openClient(ctx, 'B', { connect: false })
  let atSynced = null
  b.provider.on('sync', (synced) => {
    if (synced && atSynced === null) {
      atSynced = { sv: canonical(stateVector(b.doc)), content: canonical(content(b.doc)), at: performance.now() }
    }
  })
  const t0 = performance.now()
  b.provider.connect()
  await waitSynced(ctx, b)
  const bSyncMs = Math.round((atSynced.at - t0) * 10) / 10
  if (atSynced.content !== expected.content || atSynced.sv !== expected.sv) {
    const got = JSON.parse(atSynced.content)
    throw new ScenarioError('B did not hold A\'s full content when its synced event fired', {
      expected_text_len: JSON.parse(expected.content).text.length,
      got_text_len: got.text.length,
      got_map_keys: Object.keys(got.map).length,
      b_frames: frameSummary(b.frames)
    })
  }
  return {
    update_bytes: update.length,
    echo_ms: echo.ms,
    echo_match: echo.match,
    b_sync_ms: bSyncMs,
    b_frames: frameSummary(b.frames),
    text_len: JSON.parse(expected.content).text.length
  }
}
