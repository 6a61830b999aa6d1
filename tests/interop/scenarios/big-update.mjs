// big-update: A inserts 2 MiB into a Y.Text in one transaction; B must receive it intact.

import { createHash } from 'node:crypto'
import { ScenarioError, openClient, waitSynced, waitUntil, randomText } from '../lib.mjs'

const SIZE = 2 * 1024 * 1024

const sha256 = (s) => createHash('sha256').update(s).digest('hex')

export default async function bigUpdate (ctx) {
  ctx.step('connect')
  const a = openClient(ctx, 'A')
  const b = openClient(ctx, 'B')
  await Promise.all([waitSynced(ctx, a), waitSynced(ctx, b)])

  ctx.step('A inserts 2 MiB')
  const payload = randomText(ctx.rng, SIZE)
  const digest = sha256(payload)
  let updateBytes = 0
  a.doc.once('update', u => { updateBytes = u.length })
  const bText = b.doc.getText('text')
  const t0 = performance.now()
  a.doc.getText('text').insert(0, payload)

  ctx.step('B receives it')
  const limitMs = Math.max(1000, ctx.deadline - performance.now() - 500)
  try {
    await waitUntil(ctx, 'B holds the 2 MiB text', () => bText.length === SIZE, { on: [[b.doc, 'update']], limitMs })
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err
    throw new ScenarioError('B did not receive the 2 MiB update', {
      b_text_len: bText.length, b_closes: b.closes, a_closes: a.closes, b_connects: b.connects
    })
  }
  const transferMs = performance.now() - t0
  const got = bText.toString()
  if (sha256(got) !== digest) throw new ScenarioError('B holds 2 MiB but the content differs')
  if (a.closes.length > 0 || b.closes.length > 0) {
    throw new ScenarioError('a connection closed during the transfer', { a_closes: a.closes, b_closes: b.closes })
  }
  return {
    text_bytes: SIZE,
    update_bytes: updateBytes,
    a_bytes_out: a.bytesOut,
    b_bytes_in: b.bytesIn,
    transfer_ms: Math.round(transferMs * 10) / 10,
    mib_per_s: Math.round((SIZE / 1048576) / (transferMs / 1000) * 10) / 10,
    sha256: digest
  }
}
