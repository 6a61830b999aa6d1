// held --text T --expect-close CODE: H (URL 1) joins, writes T into the Y.Text `text`, waits
// for the server's echo (T is in the shared log), sets its awareness state to
// `{"user":{"name":"Held client"}}`, prints `held: ready` on stderr and waits (under the
// scenario deadline) until the server closes its connection — the calling test acts on the
// room meanwhile (the admin console deletes it). While it waits, H keeps editing once a
// second: it appends ` #n` to the text and sets its awareness field `tick` to n (n = 1, 2,
// …), so an observer can tell that it sees the room live. The first close must carry CODE;
// H then stops, so it does not bring the room back by reconnecting.

import { ScenarioError, openClient, waitSynced, waitUntil } from '../lib.mjs'
import { waitEcho } from './late-join.mjs'

const STEP_LIMIT_MS = 10_000
const TICK_MS = 1000
export const HELD_NAME = 'Held client'

export default async function held (ctx) {
  const { text, expectClose } = ctx.options
  if (!text) throw new ScenarioError('held needs --text')
  ctx.step('H connects')
  const h = openClient(ctx, 'H')
  await waitSynced(ctx, h, STEP_LIMIT_MS)

  ctx.step('H writes')
  let update = null
  h.doc.once('update', u => { update = u })
  const from = h.frames.length
  h.doc.getText('text').insert(0, text)
  if (update === null) throw new ScenarioError('H produced no update (empty --text?)')
  await waitEcho(ctx, h, update, from, STEP_LIMIT_MS)
  h.awareness.setLocalStateField('user', { name: HELD_NAME })

  ctx.step(`waiting for the server to close H (expected ${expectClose})`)
  console.error('held: ready')
  let ticks = 0
  const ticker = setInterval(() => {
    if (h.closes.length > 0) return
    ticks++
    const t = h.doc.getText('text')
    t.insert(t.length, ` #${ticks}`)
    h.awareness.setLocalStateField('tick', ticks)
  }, TICK_MS)
  let closeMs
  try {
    closeMs = await waitUntil(ctx, 'H closed by the server', () => h.closes.length > 0,
      { on: [[h.provider, 'connection-close']], pollMs: 50 })
  } finally {
    clearInterval(ticker)
  }
  h.provider.disconnect()
  const first = h.closes[0]
  if (first.code !== expectClose) {
    throw new ScenarioError(`H was closed with ${first.code}, expected ${expectClose}`, { closes: h.closes })
  }
  return { close_ms: closeMs, close_code: first.code, closes: h.closes, ticks }
}
