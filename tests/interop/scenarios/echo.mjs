// echo: a raw client sends sync step 1, gets sync step 1 and step 2 from the server, sends an
// update and must receive that same update back with a byte-identical payload (the y-websocket
// 4.x `sync-status` feature counts on this echo).

import {
  ScenarioError, Y, openRaw, waitFrame, encodeSyncStep1, encodeUpdate, bytesEqual, MSG, SYNC,
  frameSummary, randomText
} from '../lib.mjs'
import { matchUpdate } from './late-join.mjs'

const STEP_LIMIT_MS = 5000

export default async function echo (ctx) {
  ctx.step('raw client connects')
  const raw = await openRaw(ctx, 'R', { limitMs: STEP_LIMIT_MS })
  const doc = new Y.Doc()
  ctx.defer(() => doc.destroy())

  ctx.step('handshake')
  raw.send(encodeSyncStep1(Y.encodeStateVector(doc)))
  const isSync = (sub) => (f) => f.type === MSG.sync && f.sub === sub
  try {
    await waitFrame(ctx, 'server sync step 1', raw, isSync(SYNC.step1), { limitMs: STEP_LIMIT_MS })
    await waitFrame(ctx, 'server sync step 2', raw, isSync(SYNC.step2), { limitMs: STEP_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError(`${err.message}`, { frames: frameSummary(raw.frames) })
  }
  const handshake = frameSummary(raw.frames)

  ctx.step('send update; wait for the echo')
  let update = null
  doc.once('update', u => { update = u })
  doc.getText('text').insert(0, `echo ${randomText(ctx.rng, 32)}`)
  doc.getMap('map').set('echo', true)
  const from = raw.frames.length
  const t0 = performance.now()
  raw.send(encodeUpdate(update))
  let got
  try {
    got = await waitFrame(ctx, 'an update frame back', raw, isSync(SYNC.update), { from, limitMs: STEP_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError(`no sync update came back within ${STEP_LIMIT_MS} ms`, { frames_after_update: frameSummary(raw.frames.slice(from)) })
  }
  const echoMs = Math.round((performance.now() - t0) * 10) / 10
  if (!bytesEqual(got.payload, update)) {
    throw new ScenarioError('the echoed update is not byte-identical to the one sent', {
      sent_bytes: update.length, got_bytes: got.payload.length, equivalent: matchUpdate(got.payload, update) !== null
    })
  }
  if (raw.closeInfo) throw new ScenarioError('server closed the connection', { close: raw.closeInfo })
  return {
    handshake_frames: handshake,
    update_bytes: update.length,
    echo_ms: echoMs,
    echo_match: 'identical'
  }
}
