// Byte-level y-websocket protocol: message encoders/decoders (lib0 encoding) and a raw WebSocket
// client that records every frame it receives. Used by scenarios that need exact control over
// what goes on the wire (echo, malformed probes, query-awareness) and to watch what the stock
// provider receives.

import WebSocket from 'ws'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** Top-level message types (first varuint of every frame). */
export const MSG = Object.freeze({ sync: 0, awareness: 1, auth: 2, queryAwareness: 3 })
/** Sync sub-types (second varuint of a sync frame). */
export const SYNC = Object.freeze({ step1: 0, step2: 1, update: 2 })

const build = (fn) => {
  const enc = encoding.createEncoder()
  fn(enc)
  return encoding.toUint8Array(enc)
}

/** `[0, sub, varUint8Array(payload)]` */
export const encodeSync = (sub, payload) => build(enc => {
  encoding.writeVarUint(enc, MSG.sync)
  encoding.writeVarUint(enc, sub)
  encoding.writeVarUint8Array(enc, payload)
})
export const encodeSyncStep1 = (stateVector) => encodeSync(SYNC.step1, stateVector)
export const encodeSyncStep2 = (update) => encodeSync(SYNC.step2, update)
export const encodeUpdate = (update) => encodeSync(SYNC.update, update)
/** `[1, varUint8Array(awarenessUpdate)]` */
export const encodeAwareness = (awarenessUpdate) => build(enc => {
  encoding.writeVarUint(enc, MSG.awareness)
  encoding.writeVarUint8Array(enc, awarenessUpdate)
})
/** `[3]` */
export const encodeQueryAwareness = () => build(enc => encoding.writeVarUint(enc, MSG.queryAwareness))

/**
 * Encodes an awareness update payload from `[{clientID, clock, json}]`; `json` is written as-is
 * (a string), so a test can send invalid JSON.
 */
export const encodeAwarenessEntries = (entries) => build(enc => {
  encoding.writeVarUint(enc, entries.length)
  for (const { clientID, clock, json } of entries) {
    encoding.writeVarUint(enc, clientID)
    encoding.writeVarUint(enc, clock)
    encoding.writeVarString(enc, json)
  }
})

/** Decodes an awareness update payload; `state` is undefined when the JSON does not parse. */
export const decodeAwarenessEntries = (payload) => {
  const dec = decoding.createDecoder(payload)
  const n = decoding.readVarUint(dec)
  const entries = []
  for (let i = 0; i < n; i++) {
    const clientID = decoding.readVarUint(dec)
    const clock = decoding.readVarUint(dec)
    const json = decoding.readVarString(dec)
    let state
    try { state = JSON.parse(json) } catch { state = undefined }
    entries.push({ clientID, clock, state })
  }
  return entries
}

/**
 * Decodes one frame into `{ type, sub?, payload?, entries?, error? }`. Never throws: a frame that
 * does not decode is returned with `error` set, so the caller can report it.
 */
export const decodeMessage = (bytes) => {
  const msg = { type: -1, size: bytes.length }
  try {
    const dec = decoding.createDecoder(bytes)
    msg.type = decoding.readVarUint(dec)
    if (msg.type === MSG.sync) {
      msg.sub = decoding.readVarUint(dec)
      msg.payload = decoding.readVarUint8Array(dec)
    } else if (msg.type === MSG.awareness) {
      msg.payload = decoding.readVarUint8Array(dec)
      msg.entries = decodeAwarenessEntries(msg.payload)
    } else if (msg.type === MSG.auth) {
      msg.sub = decoding.readVarUint(dec)
      if (decoding.hasContent(dec)) msg.reason = decoding.readVarString(dec)
    }
  } catch (err) {
    msg.error = String(err?.message ?? err)
  }
  return msg
}

/** A short human label of a decoded frame, e.g. `sync/step2(123B)` or `awareness[2]`. */
export const describe = (msg) => {
  if (msg.text !== undefined) return `text(${msg.text.length})`
  if (msg.error) return `undecodable(type ${msg.type}, ${msg.size}B)`
  switch (msg.type) {
    case MSG.sync: return `sync/${['step1', 'step2', 'update'][msg.sub] ?? msg.sub}(${msg.payload.length}B)`
    case MSG.awareness: return `awareness[${msg.entries.length}]`
    case MSG.auth: return `auth/${msg.sub}`
    case MSG.queryAwareness: return 'query-awareness'
    default: return `type-${msg.type}(${msg.size}B)`
  }
}

export const bytesEqual = (a, b) =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0

const MAX_KEPT_FRAMES = 10_000

/**
 * A raw y-websocket connection. `frames` holds every decoded frame received (with `at`, ms since
 * the connection was created); `closed` resolves with `{ code, reason, ms }` when it closes.
 */
export class RawClient {
  constructor (url, { headers } = {}) {
    this.url = url
    this.t0 = performance.now()
    this.frames = []
    this.bytesIn = 0
    this.bytesOut = 0
    this.closeInfo = null
    this.ws = new WebSocket(url, { headers, perMessageDeflate: false })
    this.ws.binaryType = 'arraybuffer'
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} instead of upgrade`)))
      this.ws.once('error', reject)
    })
    this.opened.catch(() => {}) // observed through `closed` as well
    this.ws.on('error', () => {}) // errors also end in 'close'; never let them become uncaught
    this.closed = new Promise(resolve => {
      this.ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), ms: round(performance.now() - this.t0) }
        resolve(this.closeInfo)
      })
    })
    this.ws.on('message', (data, isBinary) => {
      const at = round(performance.now() - this.t0)
      let msg
      if (!isBinary) {
        msg = { type: -1, text: Buffer.from(data).toString('utf8'), at }
      } else {
        const bytes = new Uint8Array(data)
        this.bytesIn += bytes.length
        msg = { ...decodeMessage(bytes), raw: bytes, at }
      }
      if (this.frames.length < MAX_KEPT_FRAMES) this.frames.push(msg)
      this.ws.emit('frame', msg)
    })
  }

  /** Sends binary bytes (or a string as a text frame). No-op when the socket is not open. */
  send (data) {
    if (this.ws.readyState !== WebSocket.OPEN) return false
    this.bytesOut += data.length
    this.ws.send(data, { binary: typeof data !== 'string' })
    return true
  }

  /** Frames received so far, described in order (for diagnostics). */
  summary (limit = 20) {
    return this.frames.slice(0, limit).map(describe)
  }

  /** Closes politely (1000), or terminates when `abrupt`. */
  close (abrupt = false) {
    if (this.ws.readyState === WebSocket.CLOSED) return
    if (abrupt || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate()
    else this.ws.close(1000)
  }
}

export const round = (ms) => Math.round(ms * 10) / 10
