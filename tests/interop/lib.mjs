// Shared helpers for the interop scenarios: the scenario context (URLs, deadline, cleanup), stock
// y-websocket providers with a frame tap, bounded waits, and document comparison.
//
// Every wait is bounded: by the scenario deadline (-> TimeoutError, exit 2) or by a shorter
// per-step limit (-> ScenarioError, exit 1). Nothing here sleeps to assert.

import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as prng from 'lib0/prng'
import { RawClient, bytesEqual, decodeMessage, describe, round } from './raw.mjs'

export * from './raw.mjs'
export { Y, WebSocket, WebsocketProvider, prng }

/** A failed expectation: the scenario exits 1 with `reason` and any `details` merged in. */
export class ScenarioError extends Error {
  constructor (reason, details = {}) {
    super(reason)
    this.details = details
  }
}

/** The scenario deadline passed: exit 2. */
export class TimeoutError extends Error {}

/** Everything a scenario needs: where to connect, its deadline, its RNG, and cleanup. */
export class Context {
  constructor ({ scenario, urls, room, token, timeoutMs, seed, options = {} }) {
    this.scenario = scenario
    this.urls = urls
    this.room = room
    this.token = token
    this.timeoutMs = timeoutMs
    this.seed = seed
    this.options = options
    this.rng = prng.create(seed)
    this.t0 = performance.now()
    this.deadline = this.t0 + timeoutMs
    this.phase = 'start'
    this.nextIndex = 0
    this.closers = []
  }

  /** Milliseconds since the scenario started. */
  elapsed () { return round(performance.now() - this.t0) }

  /** Names the current step; a timeout reports it. */
  step (phase) { this.phase = phase }

  /** The URL for the next client: clients are spread round-robin in creation order. */
  takeUrl () {
    const url = this.urls[this.nextIndex % this.urls.length]
    this.nextIndex++
    return url
  }

  /** The room URL as the provider builds it: `<url>/<room>[?token=...]`. */
  roomUrl (base) {
    const q = this.token != null ? `?token=${encodeURIComponent(this.token)}` : ''
    return `${base.replace(/\/+$/, '')}/${this.room}${q}`
  }

  /** Registers a cleanup action; actions run in reverse order. */
  defer (fn) { this.closers.push(fn) }

  async cleanup () {
    while (this.closers.length > 0) {
      const fn = this.closers.pop()
      try { await fn() } catch (err) { console.error('cleanup:', err) }
    }
  }
}

/**
 * Resolves with the elapsed ms once `pred()` is truthy. `pred` is checked now, on every event of
 * `on` (`[[emitter, eventName], ...]`) and every `pollMs`. `limitMs` bounds this step alone
 * (ScenarioError); the scenario deadline always applies (TimeoutError).
 */
export const waitUntil = (ctx, label, pred, { on = [], pollMs = 10, limitMs = Infinity } = {}) =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const stepEnd = t0 + limitMs
    const end = Math.min(stepEnd, ctx.deadline)
    let done = false
    const subs = []
    const finish = (err, value) => {
      if (done) return
      done = true
      clearInterval(poll)
      clearTimeout(timer)
      for (const [em, ev, fn] of subs) em.off(ev, fn)
      if (err) reject(err)
      else resolve(value)
    }
    const check = () => {
      if (done) return
      let ok
      try { ok = pred() } catch (err) { finish(err); return }
      if (ok) finish(null, round(performance.now() - t0))
    }
    for (const [em, ev] of on) {
      const fn = () => check()
      subs.push([em, ev, fn])
      em.on(ev, fn)
    }
    const poll = setInterval(check, pollMs)
    const timer = setTimeout(() => {
      check()
      if (stepEnd <= ctx.deadline) finish(new ScenarioError(`${label}: not within ${limitMs} ms`))
      else finish(new TimeoutError(`timeout while waiting for ${label}`))
    }, Math.max(0, end - t0))
    check()
  })

/** Waits for a promise under the scenario deadline (and an optional step limit). */
export const within = (ctx, label, promise, limitMs = Infinity) => {
  let value
  let settled = false
  let error = null
  promise.then(v => { value = v; settled = true }, e => { error = e; settled = true })
  return waitUntil(ctx, label, () => {
    if (error) throw error
    return settled
  }, { limitMs }).then(() => value)
}

/**
 * Creates a stock y-websocket provider for a fresh Y.Doc on the next URL. Incoming frames are
 * tapped (after the provider handled them) into `client.frames` and emitted as `frame` on
 * `client.tap`; outgoing bytes are counted. `connect: false` lets the caller prepare first;
 * `doc` and `url` attach a new provider to an existing doc on a chosen server (a failover).
 */
export const openClient = (ctx, name, { connect = true, doc = new Y.Doc(), url = ctx.takeUrl() } = {}) => {
  const opts = { WebSocketPolyfill: WebSocket, disableBc: true, connect: false }
  if (ctx.token != null) opts.params = { token: ctx.token }
  const provider = new WebsocketProvider(url, ctx.room, doc, opts)
  const client = {
    name,
    url,
    doc,
    provider,
    awareness: provider.awareness,
    tap: new Emitter(),
    frames: [],
    bytesIn: 0,
    bytesOut: 0,
    framesOut: 0,
    closes: [],
    errors: [],
    connects: 0
  }
  provider.on('status', ({ status }) => {
    if (status === 'connecting' && provider.ws) tapSocket(client, provider.ws)
    if (status === 'connected') client.connects++
  })
  provider.on('connection-close', (event) => {
    client.closes.push({ code: event?.code ?? null, reason: event?.reason ?? '', at: ctx.elapsed() })
  })
  provider.on('connection-error', (event) => {
    client.errors.push({ message: String(event?.message ?? event?.error?.message ?? event), at: ctx.elapsed() })
  })
  ctx.defer(() => {
    provider.destroy()
    provider.awareness.destroy()
    doc.destroy()
  })
  if (connect) provider.connect()
  return client
}

const MAX_TAPPED_FRAMES = 10_000

const tapSocket = (client, ws) => {
  ws.addEventListener('message', (event) => {
    const data = event.data
    const msg = typeof data === 'string'
      ? { type: -1, text: data }
      : decodeMessage(new Uint8Array(data))
    if (typeof data !== 'string') {
      msg.raw = new Uint8Array(data)
      client.bytesIn += data.byteLength
    }
    if (client.frames.length < MAX_TAPPED_FRAMES) client.frames.push(msg)
    client.tap.emit('frame', msg)
  })
  const send = ws.send.bind(ws)
  ws.send = (data, ...rest) => {
    client.bytesOut += data.length ?? data.byteLength ?? 0
    client.framesOut++
    return send(data, ...rest)
  }
}

/** Minimal emitter with the `on`/`off` shape `waitUntil` expects. */
export class Emitter {
  constructor () { this.listeners = new Map() }
  on (ev, fn) {
    if (!this.listeners.has(ev)) this.listeners.set(ev, new Set())
    this.listeners.get(ev).add(fn)
  }
  off (ev, fn) { this.listeners.get(ev)?.delete(fn) }
  emit (ev, ...args) { for (const fn of [...(this.listeners.get(ev) ?? [])]) fn(...args) }
}

/** Waits until the provider emitted `synced` (it fires after sync step 2 was applied). */
export const waitSynced = (ctx, client, limitMs) =>
  waitUntil(ctx, `${client.name} synced`, () => client.provider.synced,
    { on: [[client.provider, 'sync']], limitMs })

/** Opens a raw connection to the room on the next URL; resolves once the socket is open. */
export const openRaw = async (ctx, name, { limitMs } = {}) => {
  const raw = new RawClient(ctx.roomUrl(ctx.takeUrl()))
  raw.name = name
  ctx.defer(() => raw.close(true))
  await within(ctx, `${name} websocket open`, raw.opened, limitMs)
  return raw
}

/** Resolves with the first frame of `raw` (index >= `from`) that satisfies `pred`. */
export const waitFrame = async (ctx, label, raw, pred, { from = 0, limitMs } = {}) => {
  let found = null
  const scan = () => {
    for (let i = from; i < raw.frames.length; i++) {
      if (pred(raw.frames[i])) { found = raw.frames[i]; return true }
    }
    return false
  }
  await waitUntil(ctx, label, scan, { on: [[raw.ws, 'frame']], limitMs })
  return found
}

/** The state vector of a doc as a plain object `{clientID: clock}` (order-independent). */
export const stateVector = (doc) => Object.fromEntries([...Y.decodeStateVector(Y.encodeStateVector(doc))].sort((a, b) => a[0] - b[0]))

/** The content this harness puts in its docs: one Y.Text `text` and one Y.Map `map`. */
export const content = (doc) => ({ text: doc.getText('text').toString(), map: doc.getMap('map').toJSON() })

/** A canonical JSON string for deep comparison (object keys sorted). */
export const canonical = (value) => JSON.stringify(value, (_k, v) =>
  v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v)

/**
 * True when all docs are in the same state: byte-identical encoded state vectors, equal snapshots
 * (state vector and delete set) and identical content.
 */
export const converged = (docs) => {
  const sv0 = Y.encodeStateVector(docs[0])
  const snap0 = Y.snapshot(docs[0])
  const c0 = canonical(content(docs[0]))
  return docs.every(d => bytesEqual(Y.encodeStateVector(d), sv0) && Y.equalSnapshots(Y.snapshot(d), snap0) &&
    canonical(content(d)) === c0)
}

/** Describes how docs differ (for failure reasons). */
export const divergence = (docs) => docs.map(d => {
  const c = content(d)
  return { sv: stateVector(d), text_len: c.text.length, map_keys: Object.keys(c.map).length }
})

/** Frame descriptions for diagnostics. */
export const frameSummary = (frames, limit = 12) => frames.slice(0, limit).map(describe)

/** A pseudo-random ASCII string of `len` characters from the scenario RNG. */
export const randomText = (rng, len) => {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '
  const out = new Array(len)
  for (let i = 0; i < len; i++) out[i] = alphabet[prng.uint32(rng, 0, alphabet.length - 1)]
  return out.join('')
}
