// converge: 3 providers (round-robin over the URLs) edit one Y.Text and one Y.Map concurrently
// for ~1 s; afterwards all three docs must have identical state vectors and content.

import {
  ScenarioError, openClient, waitSynced, waitUntil, converged, divergence, content, prng, randomText
} from '../lib.mjs'

const CLIENTS = 3
const EDIT_MS = 1000
const MAX_OPS_PER_CLIENT = 250
const MAP_KEYS = 16

/** One random edit on `doc` (sometimes several in one transaction). */
export const randomEdit = (rng, doc, tag) => {
  const text = doc.getText('text')
  const map = doc.getMap('map')
  const ops = prng.int32(rng, 0, 9) === 0 ? prng.int32(rng, 2, 4) : 1
  doc.transact(() => {
    for (let i = 0; i < ops; i++) {
      const kind = prng.int32(rng, 0, 9)
      if (kind < 5) {
        text.insert(prng.int32(rng, 0, text.length), `${tag}${randomText(rng, prng.int32(rng, 1, 8))}`)
      } else if (kind < 7 && text.length > 0) {
        const at = prng.int32(rng, 0, text.length - 1)
        text.delete(at, Math.min(prng.int32(rng, 1, 5), text.length - at))
      } else if (kind < 9) {
        map.set(`k${prng.int32(rng, 0, MAP_KEYS - 1)}`, prng.bool(rng) ? prng.int32(rng, 0, 1e6) : `${tag}${randomText(rng, 4)}`)
      } else {
        map.delete(`k${prng.int32(rng, 0, MAP_KEYS - 1)}`)
      }
    }
  })
}

/**
 * Runs edit loops on `clients` until `untilMs` from now or `maxOps` edits each; each client waits
 * a random 2-15 ms between edits. Resolves with the number of edits made.
 */
export const editConcurrently = (ctx, clients, { untilMs, maxOps, stop = () => false }) =>
  new Promise(resolve => {
    const end = performance.now() + untilMs
    let running = clients.length
    let total = 0
    for (const c of clients) {
      let n = 0
      const tick = () => {
        if (stop() || n >= maxOps || performance.now() >= end) {
          if (--running === 0) resolve(total)
          return
        }
        randomEdit(ctx.rng, c.doc, c.name)
        n++
        total++
        setTimeout(tick, prng.int32(ctx.rng, 2, 15))
      }
      setTimeout(tick, prng.int32(ctx.rng, 0, 5))
    }
  })

export default async function converge (ctx) {
  ctx.step('connect')
  const clients = []
  for (let i = 0; i < CLIENTS; i++) clients.push(openClient(ctx, `c${i}`))
  const connectMs = Math.max(...await Promise.all(clients.map(c => waitSynced(ctx, c))))

  ctx.step('edit')
  const updates = { count: 0, bytes: 0 }
  for (const c of clients) {
    c.doc.on('update', (u, origin) => {
      if (origin !== c.provider) { updates.count++; updates.bytes += u.length }
    })
  }
  const t0 = performance.now()
  const ops = await editConcurrently(ctx, clients, { untilMs: EDIT_MS, maxOps: MAX_OPS_PER_CLIENT })
  const editMs = performance.now() - t0

  ctx.step('converge')
  const docs = clients.map(c => c.doc)
  let convergeMs
  try {
    convergeMs = await waitUntil(ctx, 'convergence', () => converged(docs), {
      on: docs.map(d => [d, 'update']), pollMs: 25, limitMs: Math.max(1000, ctx.deadline - performance.now() - 500)
    })
  } catch (err) {
    if (err instanceof ScenarioError) throw new ScenarioError('docs did not converge', { docs: divergence(docs) })
    throw err
  }
  const final = content(docs[0])
  return {
    clients: CLIENTS,
    connect_ms: connectMs,
    ops,
    local_updates: updates.count,
    local_update_bytes: updates.bytes,
    edit_ms: Math.round(editMs),
    converge_ms: convergeMs,
    text_len: final.text.length,
    map_keys: Object.keys(final.map).length,
    frames_in: clients.map(c => c.frames.length),
    bytes_in: clients.map(c => c.bytesIn),
    bytes_out: clients.map(c => c.bytesOut),
    reconnects: clients.reduce((n, c) => n + c.connects - 1, 0)
  }
}
