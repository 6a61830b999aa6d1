// Scenarios where the server process behind the first URL is SIGKILLed mid-run
// (`--kill-pid PID`, the pid of that server; two URLs of one cluster are required).
//
// failover: A (URL 1) and B (URL 2) insert unique markers continuously (into the Y.Text `text`,
// always at its end, and as keys of the Y.Map `map`). Once markers flow across, server 1 is
// killed; A keeps editing, notices the loss, writes a few markers offline, and its doc moves
// to a new provider on URL 2 (what a load balancer does), where it keeps editing. Then both stop: A and B must
// converge holding every marker either inserted, and a late joiner C on URL 2 must hold the
// same text at its `synced` event. Reports the final `text` so a test can check it elsewhere.
//
// awareness-failover [--hold-ms N]: A (URL 1) renews its awareness state every 250 ms; B (URL 2)
// sees it and must keep seeing it for N ms (default 0; longer than the servers' awareness
// timeout proves renewals keep a live remote state). Server 1 is killed without any goodbye;
// B must see A's state removed within 15 s (the client itself only expires it after 30 s).

import {
  ScenarioError, openClient, waitSynced, waitUntil, converged, divergence, randomText, content, canonical, MSG
} from '../lib.mjs'

const STEP_LIMIT_MS = 10_000
const EDIT_EVERY_MS = 15
const MARKERS_BEFORE_KILL = 40
const MARKERS_AFTER_FAILOVER = 40
const MARKERS_OFFLINE = 5
const RENEW_EVERY_MS = 250
const REMOVAL_LIMIT_MS = 15_000

const needTwoUrls = (ctx) => {
  if (ctx.urls.length < 2) throw new ScenarioError(`${ctx.scenario} needs two URLs of one cluster`)
  return [ctx.urls[0], ctx.urls[1]]
}

const kill = (pid) => {
  try {
    process.kill(pid, 'SIGKILL')
  } catch (err) {
    throw new ScenarioError(`cannot SIGKILL ${pid}: ${err.message}`)
  }
}

/** Inserts markers `<tag><n>.` every EDIT_EVERY_MS into whatever doc `docOf()` returns. */
const editor = (tag, docOf, markers) => {
  const timer = setInterval(() => {
    const doc = docOf()
    const marker = `${tag}${markers.length}.`
    doc.transact(() => {
      const text = doc.getText('text')
      text.insert(text.length, marker)
      doc.getMap('map').set(marker, markers.length)
    })
    markers.push(marker)
  }, EDIT_EVERY_MS)
  return () => clearInterval(timer)
}

const missing = (doc, markers) => {
  const text = doc.getText('text').toString()
  const map = doc.getMap('map')
  return markers.filter(m => !text.includes(m) || !map.has(m))
}

const seen = (doc, markers) => markers.length - missing(doc, markers).length

async function failover (ctx) {
  const [, url2] = needTwoUrls(ctx)
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a, STEP_LIMIT_MS), waitSynced(ctx, b, STEP_LIMIT_MS)])
  const tagA = `A${randomText(ctx.rng, 4).replace(/ /g, '_')}-`
  const tagB = `B${randomText(ctx.rng, 4).replace(/ /g, '_')}-`
  const markersA = []
  const markersB = []
  const stopA = editor(tagA, () => a.doc, markersA)
  const stopB = editor(tagB, () => b.doc, markersB)
  ctx.defer(() => { stopA(); stopB() })

  ctx.step('edits flow across the two servers')
  await waitUntil(ctx, `B sees ${MARKERS_BEFORE_KILL} of A's markers and A sees ${MARKERS_BEFORE_KILL} of B's`,
    () => seen(b.doc, markersA) >= MARKERS_BEFORE_KILL && seen(a.doc, markersB) >= MARKERS_BEFORE_KILL,
    { on: [[a.doc, 'update'], [b.doc, 'update']], limitMs: STEP_LIMIT_MS })

  ctx.step('kill server 1')
  const killedAt = markersA.length
  kill(ctx.options.killPid)
  const lossMs = await waitUntil(ctx, 'A notices that its connection is gone', () => !a.provider.wsconnected,
    { on: [[a.provider, 'status']], limitMs: STEP_LIMIT_MS })

  ctx.step('A edits offline')
  const lostAt = markersA.length
  await waitUntil(ctx, `A writes ${MARKERS_OFFLINE} markers offline`, () => markersA.length >= lostAt + MARKERS_OFFLINE,
    { limitMs: STEP_LIMIT_MS })

  ctx.step('A moves to server 2')
  a.provider.destroy() // the load balancer sends the reconnect to a live node
  const movedAt = markersA.length
  const a2 = openClient(ctx, 'A@2', { doc: a.doc, url: url2 })
  const resyncMs = await waitSynced(ctx, a2, STEP_LIMIT_MS)

  ctx.step('edits continue after the failover')
  const base = markersA.length
  await waitUntil(ctx, `B sees ${MARKERS_AFTER_FAILOVER} markers A wrote after the failover`,
    () => markersA.length >= base + MARKERS_AFTER_FAILOVER && seen(b.doc, markersA.slice(base)) >= MARKERS_AFTER_FAILOVER,
    { on: [[b.doc, 'update']], limitMs: STEP_LIMIT_MS })
  stopA()
  stopB()

  ctx.step('converge')
  try {
    await waitUntil(ctx, 'A and B converge holding every marker',
      () => converged([a.doc, b.doc]) && missing(a.doc, [...markersA, ...markersB]).length === 0,
      { on: [[a.doc, 'update'], [b.doc, 'update']], limitMs: STEP_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError('A and B did not converge with every marker after the failover', {
      a_missing: missing(a.doc, [...markersA, ...markersB]).slice(0, 20),
      b_missing: missing(b.doc, [...markersA, ...markersB]).slice(0, 20),
      docs: divergence([a.doc, b.doc])
    })
  }

  ctx.step('late joiner C on server 2')
  const expected = canonical(content(a.doc))
  const c = openClient(ctx, 'C', { url: url2, connect: false })
  let atSynced = null
  c.provider.on('sync', (s) => { if (s && atSynced === null) atSynced = canonical(content(c.doc)) })
  c.provider.connect()
  await waitSynced(ctx, c, STEP_LIMIT_MS)
  if (atSynced !== expected) {
    throw new ScenarioError('late joiner C did not hold the converged content at its synced event', {
      c_missing: missing(c.doc, [...markersA, ...markersB]).slice(0, 20),
      expected_text_len: a.doc.getText('text').length,
      c_text_len_at_synced: JSON.parse(atSynced).text.length
    })
  }
  return {
    markers_a: markersA.length,
    markers_b: markersB.length,
    a_markers_before_kill: killedAt,
    a_markers_while_disconnected: movedAt - killedAt,
    loss_detected_ms: lossMs,
    resync_ms: resyncMs,
    a_closes: a.closes,
    text: a.doc.getText('text').toString()
  }
}

async function awarenessFailover (ctx) {
  needTwoUrls(ctx)
  const holdMs = ctx.options.holdMs ?? 0
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a, STEP_LIMIT_MS), waitSynced(ctx, b, STEP_LIMIT_MS)])
  const aId = a.doc.clientID

  ctx.step('A announces itself and renews')
  const nonce = randomText(ctx.rng, 12)
  let renewals = 0
  const renew = () => a.awareness.setLocalState({ user: { name: 'A' }, nonce, n: renewals++ })
  renew()
  const timer = setInterval(renew, RENEW_EVERY_MS)
  ctx.defer(() => clearInterval(timer))
  const awarenessMs = await waitUntil(ctx, 'B sees A\'s awareness state',
    () => b.awareness.getStates().get(aId)?.nonce === nonce,
    { on: [[b.awareness, 'change']], limitMs: STEP_LIMIT_MS })

  ctx.step('B keeps seeing A while A is alive')
  let dropped = null
  const onChange = ({ removed }) => { if (removed.includes(aId) && dropped === null) dropped = ctx.elapsed() }
  b.awareness.on('change', onChange)
  const holdStart = performance.now()
  await waitUntil(ctx, 'hold', () => dropped !== null || performance.now() - holdStart >= holdMs, { pollMs: 50 })
  b.awareness.off('change', onChange)
  const heldMs = Math.round(performance.now() - holdStart)
  if (dropped !== null) {
    throw new ScenarioError('B lost the awareness state of A while A was alive and renewing it', { awareness_ms: awarenessMs, dropped_at: dropped })
  }
  const seenN = b.awareness.getStates().get(aId)?.n ?? null

  ctx.step('kill server 1; B must see A removed')
  clearInterval(timer)
  a.provider.shouldConnect = false // A is gone with its server: no reconnect elsewhere
  const bFrom = b.frames.length
  kill(ctx.options.killPid)
  let removalMs
  try {
    removalMs = await waitUntil(ctx, 'B sees A\'s state removed', () => !b.awareness.getStates().has(aId),
      { on: [[b.awareness, 'change']], limitMs: REMOVAL_LIMIT_MS })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError(`B still sees A's awareness state ${REMOVAL_LIMIT_MS} ms after A's server was killed`, { awareness_ms: awarenessMs })
  }
  const removal = b.frames.slice(bFrom).some(f => f.type === MSG.awareness && f.entries?.some(e => e.clientID === aId && e.state === null))
  return {
    awareness_ms: awarenessMs,
    held_ms: heldMs,
    renewals,
    b_saw_renewal: seenN,
    removal_ms: removalMs,
    removal_frame: removal ? 'awareness null state' : 'none seen'
  }
}

export const scenarios = { failover, 'awareness-failover': awarenessFailover }
