// edit-loop: 3 providers (round-robin over the URLs) edit continuously for --duration-ms. Every
// edit is one transaction that inserts a unique marker (`<client>.<n>`) at a random position of
// the Y.Array `markers`, inserts or deletes some text, and records the client's latest edit in
// the Y.Map `map` (`last-<client>` = n). Afterwards all docs must converge, every doc must hold
// every marker exactly once, and a late joiner D must hold exactly that state when its `synced`
// event fires. The converged content is returned (`final`) so callers can compare it with what
// they stored.
//
// Meant to run while something disruptive happens server-side (e.g. a compactor killed in a
// loop): edits never stop for it, and nothing may be lost.

import {
  ScenarioError, openClient, waitSynced, waitUntil, converged, divergence, content, canonical,
  stateVector, prng, randomText
} from '../lib.mjs'

const CLIENTS = 3
const DEFAULT_DURATION_MS = 10_000

const markersOf = (doc) => doc.getArray('markers').toArray()

/** One edit by `c`: a unique marker, some text, the client's latest edit number. */
const edit = (ctx, c) => {
  const rng = ctx.rng
  const text = c.doc.getText('text')
  const markers = c.doc.getArray('markers')
  const n = c.edits
  c.doc.transact(() => {
    markers.insert(prng.int32(rng, 0, markers.length), [`${c.name}.${n}`])
    if (prng.int32(rng, 0, 9) < 3 && text.length > 0) {
      const at = prng.int32(rng, 0, text.length - 1)
      text.delete(at, Math.min(prng.int32(rng, 1, 5), text.length - at))
    } else {
      text.insert(prng.int32(rng, 0, text.length), randomText(rng, prng.int32(rng, 1, 8)))
    }
    c.doc.getMap('map').set(`last-${c.name}`, n)
  })
  c.edits++
}

/** Edits on every client until `untilMs` from now; each waits 5-20 ms between edits. */
const runEdits = (ctx, clients, untilMs) => new Promise(resolve => {
  const end = performance.now() + untilMs
  let running = clients.length
  for (const c of clients) {
    const tick = () => {
      if (performance.now() >= end) {
        if (--running === 0) resolve()
        return
      }
      edit(ctx, c)
      setTimeout(tick, prng.int32(ctx.rng, 5, 20))
    }
    setTimeout(tick, prng.int32(ctx.rng, 0, 5))
  }
})

/** Markers missing from or duplicated in `doc`, given every client's edit count. */
const markerErrors = (doc, clients) => {
  const seen = new Map()
  for (const m of markersOf(doc)) seen.set(m, (seen.get(m) ?? 0) + 1)
  const missing = []
  const duplicated = []
  for (const c of clients) {
    for (let n = 0; n < c.edits; n++) {
      const count = seen.get(`${c.name}.${n}`) ?? 0
      if (count === 0) missing.push(`${c.name}.${n}`)
      if (count > 1) duplicated.push(`${c.name}.${n}`)
    }
  }
  const expected = clients.reduce((s, c) => s + c.edits, 0)
  return { missing, duplicated, extra: seen.size - (expected - missing.length) }
}

export default async function editLoop (ctx) {
  const durationMs = ctx.options.durationMs ?? DEFAULT_DURATION_MS

  ctx.step('connect')
  const clients = []
  for (let i = 0; i < CLIENTS; i++) {
    const c = openClient(ctx, `c${i}`)
    c.edits = 0
    clients.push(c)
  }
  await Promise.all(clients.map(c => waitSynced(ctx, c)))

  ctx.step('edit')
  const t0 = performance.now()
  await runEdits(ctx, clients, durationMs)
  const editMs = performance.now() - t0

  ctx.step('converge')
  const docs = clients.map(c => c.doc)
  const all = () => converged(docs) &&
    docs.every(d => canonical(markersOf(d)) === canonical(markersOf(docs[0])))
  let convergeMs
  try {
    convergeMs = await waitUntil(ctx, 'convergence', all, {
      on: docs.map(d => [d, 'update']), pollMs: 25, limitMs: Math.max(1000, ctx.deadline - performance.now() - 5000)
    })
  } catch (err) {
    if (err instanceof ScenarioError) throw new ScenarioError('docs did not converge', { docs: divergence(docs) })
    throw err
  }
  for (const c of clients) {
    const errors = markerErrors(c.doc, clients)
    if (errors.missing.length || errors.duplicated.length || errors.extra) {
      throw new ScenarioError(`${c.name} does not hold every marker exactly once`, {
        missing: errors.missing.slice(0, 20),
        missing_count: errors.missing.length,
        duplicated: errors.duplicated.slice(0, 20),
        extra: errors.extra
      })
    }
  }

  ctx.step('late joiner')
  const expected = {
    sv: canonical(stateVector(docs[0])),
    content: canonical({ ...content(docs[0]), markers: markersOf(docs[0]) })
  }
  const d = openClient(ctx, 'D', { connect: false })
  let atSynced = null
  d.provider.on('sync', (synced) => {
    if (synced && atSynced === null) {
      atSynced = { sv: canonical(stateVector(d.doc)), content: canonical({ ...content(d.doc), markers: markersOf(d.doc) }) }
    }
  })
  d.provider.connect()
  const dSyncMs = await waitSynced(ctx, d, 10_000)
  if (atSynced.sv !== expected.sv || atSynced.content !== expected.content) {
    throw new ScenarioError('late joiner D did not hold the converged state at synced', {
      d_markers: JSON.parse(atSynced.content).markers.length,
      expected_markers: markersOf(docs[0]).length
    })
  }
  const final = content(docs[0])
  return {
    clients: CLIENTS,
    duration_ms_requested: durationMs,
    edit_ms: Math.round(editMs),
    edits: clients.map(c => c.edits),
    markers: markersOf(docs[0]).length,
    converge_ms: convergeMs,
    d_sync_ms: dSyncMs,
    reconnects: clients.reduce((n, c) => n + c.connects - 1, 0),
    closes: clients.map(c => c.closes.length),
    final: { text: final.text, map: final.map, markers: markersOf(docs[0]) }
  }
}
