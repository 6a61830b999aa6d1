// Pure helpers of the admin console (unit-tested in test/admin.test.mjs).

/**
 * Splits Server-Sent Events text into complete events and the unfinished rest.
 * @param {string} buffer text received so far
 * @returns {{ events: Array<{ event: string, data: string }>, rest: string }}
 */
export function parseEvents (buffer) {
  const events = []
  const blocks = buffer.replace(/\r\n/g, '\n').split('\n\n')
  const rest = blocks.pop() ?? ''
  for (const block of blocks) {
    let event = 'message'
    const data = []
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim()
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
    }
    if (data.length) events.push({ event, data: data.join('\n') })
  }
  return { events, rest }
}

/** A byte count for people: `1.5 KB`. */
export function bytes (n) {
  if (n == null) return '–'
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  do { v /= 1024; u++ } while (v >= 1024 && u < units.length - 1)
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`
}

/** A duration in seconds for people: `3d 4h`, `5m 2s`. */
export function duration (s) {
  if (s == null) return '–'
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (d) return `${d}d ${h}h`
  if (h) return `${h}h ${m}m`
  if (m) return `${m}m ${s % 60}s`
  return `${s}s`
}

/** How long ago `ms` (epoch ms) was, seen at `now`; `–` for none. */
export function ago (ms, now) {
  if (!ms) return '–'
  return `${duration(Math.max(0, Math.round((now - ms) / 1000)))} ago`
}

/**
 * The console's view from the location's fragment: `#cluster` (the default), `#rooms`,
 * `#room/<name>` (the name percent-encoded).
 * @param {string} hash
 * @returns {{ view: 'cluster' | 'rooms' } | { view: 'room', room: string }}
 */
export function route (hash) {
  const h = hash.replace(/^#/, '')
  if (h === 'rooms') return { view: 'rooms' }
  if (h.startsWith('room/') && h.length > 5) {
    try {
      return { view: 'room', room: decodeURIComponent(h.slice(5)) }
    } catch {
      return { view: 'rooms' }
    }
  }
  return { view: 'cluster' }
}

/** The fragment of a room's view. */
export function roomHash (room) {
  return `#room/${encodeURIComponent(room)}`
}
