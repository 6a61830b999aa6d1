// malformed: while providers A and B edit the room, raw connections to the same room each send one
// malformed frame (one probe per fresh connection, in sequence). The server must close every
// probe connection (close codes reported); A and B must stay connected and converge, and a fresh
// provider C joining afterwards must get the full state.

import {
  ScenarioError, openClient, openRaw, waitSynced, waitUntil, within, converged, divergence,
  content, canonical, stateVector, encodeAwareness, encodeAwarenessEntries, encodeSync, SYNC,
  prng, frameSummary
} from '../lib.mjs'
import { editConcurrently } from './converge.mjs'

const PROBE_LIMIT_MS = 2000
const MAX_EDITS_PER_CLIENT = 2000

/** The probes, in the order they are sent. Each returns the frame (bytes or a string). */
export const probes = (rng) => [
  ['random_bytes', () => {
    // 64 pseudo-random bytes whose leading varuint (>= 128) is no known message type
    const bytes = new Uint8Array(64).map(() => prng.uint32(rng, 0, 255))
    bytes[0] |= 0x80
    bytes[1] = (bytes[1] & 0x7f) | 0x01
    return bytes
  }],
  ['truncated_varint', () => new Uint8Array([0x80])],
  ['unknown_type', () => new Uint8Array([0x09])],
  ['garbage_update', () => encodeSync(SYNC.update, new Uint8Array(16).fill(0xff))],
  ['invalid_awareness_json', () => encodeAwareness(encodeAwarenessEntries([{ clientID: 4242, clock: 1, json: '{"user": ' }]))],
  ['text_frame', () => 'hello']
]

export default async function malformed (ctx) {
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a), waitSynced(ctx, b)])

  ctx.step('probe while A and B edit')
  let probing = true
  const edits = editConcurrently(ctx, [a, b], {
    untilMs: ctx.deadline - performance.now(), maxOps: MAX_EDITS_PER_CLIENT, stop: () => !probing
  })
  const results = {}
  try {
    for (const [name, make] of probes(ctx.rng)) {
      ctx.step(`probe ${name}`)
      const raw = await openRaw(ctx, `probe ${name}`, { limitMs: PROBE_LIMIT_MS })
      const t0 = performance.now()
      raw.send(make())
      let info = null
      try {
        info = await within(ctx, `server closes the ${name} probe`, raw.closed, PROBE_LIMIT_MS)
      } catch (err) {
        if (!(err instanceof ScenarioError)) throw err
        raw.close(true)
      }
      results[name] = info
        ? { code: info.code, reason: info.reason, close_ms: Math.round((performance.now() - t0) * 10) / 10, frames_before: frameSummary(raw.frames, 4) }
        : { code: null, note: `still open after ${PROBE_LIMIT_MS} ms`, frames_before: frameSummary(raw.frames, 4) }
    }
  } finally {
    probing = false
  }
  const ops = await within(ctx, 'edit loops stop', edits)

  ctx.step('A and B converge')
  const closeCodes = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.code]))
  try {
    await waitUntil(ctx, 'A and B converge', () => converged([a.doc, b.doc]),
      { on: [[a.doc, 'update'], [b.doc, 'update']], pollMs: 25, limitMs: 5000 })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError('A and B did not converge', { close_codes: closeCodes, docs: divergence([a.doc, b.doc]) })
  }

  ctx.step('C joins')
  const c = openClient(ctx, 'C', { connect: false })
  let exactAtSynced = null
  const expected = canonical({ sv: stateVector(a.doc), content: content(a.doc) })
  c.provider.on('sync', (s) => {
    if (s && exactAtSynced === null) exactAtSynced = canonical({ sv: stateVector(c.doc), content: content(c.doc) }) === expected
  })
  c.provider.connect()
  await waitSynced(ctx, c, 5000)
  try {
    await waitUntil(ctx, 'C holds the full state', () => converged([a.doc, c.doc]), { on: [[c.doc, 'update']], limitMs: 5000 })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError('C did not get the full state', { close_codes: closeCodes, docs: divergence([a.doc, c.doc]) })
  }

  const figures = {
    close_codes: closeCodes,
    probes: results,
    edits: ops,
    text_len: a.doc.getText('text').length,
    c_exact_at_synced: exactAtSynced,
    a_closes: a.closes,
    b_closes: b.closes
  }
  const open = Object.entries(results).filter(([, v]) => v.code === null).map(([k]) => k)
  if (open.length > 0) throw new ScenarioError(`server did not close ${open.length}/${Object.keys(results).length} malformed connections: ${open.join(', ')}`, figures)
  if (a.closes.length > 0 || b.closes.length > 0) throw new ScenarioError('A or B lost its connection during the probes', figures)
  return figures
}
