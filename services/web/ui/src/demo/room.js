// Which room the demo page edits: `/demo#name`, else `/demo?room=name`, else `demo`.

export const DEFAULT_ROOM = 'demo'
/** Longest room name the page accepts (the gateway's own limit is `server.max_room_name_bytes`). */
export const MAX_ROOM_CHARS = 100

/**
 * @param {string} raw
 * @returns {string | null} the cleaned name, or null when nothing usable is left
 */
export function cleanRoom (raw) {
  let name = raw
  try {
    name = decodeURIComponent(raw)
  } catch {
    // Not percent-encoded: take it as typed.
  }
  // Control characters never belong in a room name.
  // eslint-disable-next-line no-control-regex
  name = name.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  if (name === '') return null
  return Array.from(name).slice(0, MAX_ROOM_CHARS).join('')
}

/**
 * @param {{ hash: string, search: string }} location
 * @returns {string}
 */
export function roomFromLocation (location) {
  const fromHash = location.hash.startsWith('#') ? cleanRoom(location.hash.slice(1)) : null
  if (fromHash) return fromHash
  const query = new URLSearchParams(location.search).get('room')
  return (query != null && cleanRoom(query)) || DEFAULT_ROOM
}

/**
 * The fragment that names `room` (`#` + percent-encoded name).
 * @param {string} room
 */
export function roomHash (room) {
  return `#${encodeURIComponent(room)}`
}
