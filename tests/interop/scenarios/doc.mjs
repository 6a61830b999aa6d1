// write-doc and check-doc: known text written in one test step and checked in a later one, with
// servers stopped, restarted or replaced in between (durability across nodes and restarts).
//
// write-doc --text T: W connects, waits for `synced`, appends T to the Y.Text `text` and waits
// until the server echoes that update back (it is written to the shared log before the echo).
// check-doc --expect-text T: C connects and its `text` must be exactly T at the moment its
// `synced` event fires (not later: a late joiner must get everything with sync step 2).

import { ScenarioError, openClient, waitSynced, frameSummary } from '../lib.mjs'
import { waitEcho } from './late-join.mjs'

const STEP_LIMIT_MS = 10_000

const head = (s) => (s.length > 200 ? `${s.slice(0, 200)}…` : s)

async function writeDoc (ctx) {
  const text = ctx.options.text
  ctx.step('W connects')
  const w = openClient(ctx, 'W')
  await waitSynced(ctx, w, STEP_LIMIT_MS)
  const before = w.doc.getText('text').toString()

  ctx.step('W writes')
  let update = null
  w.doc.once('update', u => { update = u })
  const from = w.frames.length
  w.doc.getText('text').insert(before.length, text)
  if (update === null) throw new ScenarioError('W produced no update (empty --text?)')

  ctx.step('W waits for the echo')
  const echo = await waitEcho(ctx, w, update, from, STEP_LIMIT_MS)
  const after = w.doc.getText('text').toString()
  return { before_len: before.length, text_len: after.length, echo_ms: echo.ms, echo_match: echo.match, text: after }
}

async function checkDoc (ctx) {
  const expected = ctx.options.expectText
  ctx.step('C connects')
  const c = openClient(ctx, 'C', { connect: false })
  let atSynced = null
  c.provider.on('sync', (synced) => {
    if (synced && atSynced === null) atSynced = c.doc.getText('text').toString()
  })
  c.provider.connect()
  const syncMs = await waitSynced(ctx, c, STEP_LIMIT_MS)
  if (atSynced !== expected) {
    throw new ScenarioError('C\'s text at its synced event is not the expected text', {
      expected_len: expected.length,
      got_len: atSynced?.length ?? null,
      expected_head: head(expected),
      got_head: head(atSynced ?? ''),
      c_frames: frameSummary(c.frames)
    })
  }
  return { sync_ms: syncMs, text_len: atSynced.length }
}

export const scenarios = { 'write-doc': writeDoc, 'check-doc': checkDoc }
