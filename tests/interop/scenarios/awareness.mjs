// awareness: A sets a local awareness state and B (next URL) must see it (awareness_ms). A raw
// client C sends query-awareness (type 3) and must get an awareness reply holding A's state. Then
// A's socket is terminated without a goodbye and B must see A's state removed (removal_ms).

import {
  ScenarioError, openClient, openRaw, waitSynced, waitUntil, waitFrame, encodeSyncStep1,
  encodeQueryAwareness, MSG, SYNC, frameSummary, randomText
} from '../lib.mjs'

const STEP_LIMIT_MS = 5000
// Below the 30 s after which y-protocols drops a silent remote state on its own, so a removal
// seen within this limit was sent by the server.
const REMOVAL_LIMIT_MS = 10_000

const hasState = (frame, clientID, nonce) =>
  frame.type === MSG.awareness && frame.entries?.some(e => e.clientID === clientID && e.state?.nonce === nonce)

export default async function awareness (ctx) {
  const skipQuery = ctx.options.skipQueryAwareness
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a), waitSynced(ctx, b)])
  const aId = a.doc.clientID
  const bId = b.doc.clientID

  let c = null
  if (!skipQuery) {
    ctx.step('raw C joins')
    c = await openRaw(ctx, 'C', { limitMs: STEP_LIMIT_MS })
    c.send(encodeSyncStep1(new Uint8Array([0])))
    await waitFrame(ctx, 'C receives sync step 2', c,
      f => f.type === MSG.sync && f.sub === SYNC.step2, { limitMs: STEP_LIMIT_MS })
  }

  ctx.step('A sets its state; B must see it')
  const nonce = randomText(ctx.rng, 12)
  a.awareness.setLocalState({ user: { name: 'A' }, nonce })
  const awarenessMs = await waitUntil(ctx, 'B sees A\'s awareness state',
    () => b.awareness.getStates().get(aId)?.nonce === nonce,
    { on: [[b.awareness, 'change']], limitMs: STEP_LIMIT_MS })

  let queryMs = null
  let queryReply = null
  if (c) {
    ctx.step('C queries awareness')
    await waitFrame(ctx, 'C receives the broadcast of A\'s state', c, f => hasState(f, aId, nonce), { limitMs: STEP_LIMIT_MS })
    // y-protocols ignores a first state at clock 0 (a provider's initial `{}`), so B is only
    // known to the server once it changes its state: do that, so the reply must list both.
    const bNonce = randomText(ctx.rng, 12)
    b.awareness.setLocalState({ user: { name: 'B' }, nonce: bNonce })
    await waitFrame(ctx, 'C receives the broadcast of B\'s state', c, f => hasState(f, bId, bNonce), { limitMs: STEP_LIMIT_MS })
    const from = c.frames.length
    const tq = performance.now()
    c.send(encodeQueryAwareness())
    try {
      // A reply lists every known state; a broadcast of a single change lists one client. The
      // connect-time push (if any) predates A's nonce. So "A with nonce and B" is the reply.
      queryReply = await waitFrame(ctx, 'awareness reply to query-awareness', c,
        f => hasState(f, aId, nonce) && f.entries.some(e => e.clientID === bId),
        { from, limitMs: STEP_LIMIT_MS })
    } catch (err) {
      if (!(err instanceof ScenarioError)) throw err
      throw new ScenarioError(`no awareness reply holding A's state within ${STEP_LIMIT_MS} ms after query-awareness (type 3)`, {
        awareness_ms: awarenessMs, c_frames_after_query: frameSummary(c.frames.slice(from))
      })
    }
    queryMs = Math.round((performance.now() - tq) * 10) / 10
  }

  ctx.step('A vanishes; B must see the removal')
  const bFrom = b.frames.length
  a.provider.shouldConnect = false // no reconnect (it would announce A again); no goodbye is sent
  a.provider.ws.terminate()
  let removalMs
  try {
    removalMs = await waitUntil(ctx, 'B sees A\'s state removed', () => !b.awareness.getStates().has(aId),
      { on: [[b.awareness, 'change']], limitMs: REMOVAL_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError(`B still sees A's awareness state ${REMOVAL_LIMIT_MS} ms after A's socket was terminated`, {
      awareness_ms: awarenessMs, query_ms: queryMs, b_frames_after_terminate: frameSummary(b.frames.slice(bFrom))
    })
  }
  const removal = b.frames.slice(bFrom).find(f => f.type === MSG.awareness && f.entries?.some(e => e.clientID === aId && e.state === null))
  return {
    awareness_ms: awarenessMs,
    query_awareness: c ? 'replied' : 'skipped',
    query_ms: queryMs,
    query_reply_clients: queryReply ? queryReply.entries.length : null,
    removal_ms: removalMs,
    removal_frame: removal ? 'awareness null state' : 'none seen'
  }
}
