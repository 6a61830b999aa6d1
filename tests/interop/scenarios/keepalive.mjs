// keepalive: one provider whose awareness local state is null (so it never renews it) sits alone
// in a quiet room for --quiet-ms (default 35000). y-websocket 3.x closes a connection on which no
// message arrived for 30 s (WebSocket pings do not count), so the server must send some harmless
// message to quiet connections. The provider must not close or reconnect during the quiet period.
// The reference server only pings, so it fails this scenario by design.

import { ScenarioError, openClient, waitSynced, waitUntil, frameSummary } from '../lib.mjs'

export default async function keepalive (ctx) {
  const quietMs = ctx.options.quietMs
  if (quietMs + 1000 > ctx.deadline - performance.now()) {
    throw new ScenarioError(`--timeout-ms must exceed --quiet-ms by at least 1000 (quiet ${quietMs} ms)`)
  }
  ctx.step('connect')
  const c = openClient(ctx, 'A', { connect: false })
  c.awareness.setLocalState(null)
  c.provider.connect()
  await waitSynced(ctx, c, 5000)

  ctx.step('quiet')
  const from = c.frames.length
  const statuses = []
  c.provider.on('status', ({ status }) => statuses.push({ status, at: ctx.elapsed() }))
  const t0 = performance.now()
  // The quiet period is the scenario's subject: wait for it to end, or for the first close.
  await waitUntil(ctx, 'quiet period', () => c.closes.length > 0 || performance.now() - t0 >= quietMs,
    { on: [[c.provider, 'connection-close']], pollMs: 100 })
  const quiet = c.frames.slice(from)
  const figures = {
    quiet_ms: quietMs,
    frames_received_while_quiet: quiet.length,
    kinds_received_while_quiet: [...new Set(frameSummary(quiet, quiet.length).map(s => s.replace(/\(.*\)$/, '')))],
    statuses
  }
  if (c.closes.length > 0 || !c.provider.wsconnected) {
    const close = c.closes[0]
    throw new ScenarioError(`connection closed after ${Math.round(performance.now() - t0)} ms of quiet (code ${close?.code ?? 'none'}: ` +
      (close && close.code === null ? 'closed by the client watchdog, no message for 30 s)' : 'closed by the server)'), figures)
  }
  return figures
}
