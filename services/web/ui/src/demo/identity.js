// Who you are on the demo page: a name and a colour, kept in localStorage so a reload keeps
// them. Remote values come from other clients' awareness and are checked before use.

export const MAX_NAME_CHARS = 32
const KEY = 'yws-demo-identity'

/** Colours that carry white label text (y-prosemirror wants 6-digit hex). */
export const PALETTE = [
  '#c0392b', '#1e7f4f', '#2f5fd0', '#b35900', '#7d3cb5',
  '#00796b', '#ad1457', '#5d6d00', '#6d4c41', '#37474f'
]

const ADJECTIVES = ['Amber', 'Brisk', 'Calm', 'Deft', 'Eager', 'Fleet', 'Gentle', 'Happy', 'Keen', 'Lucid', 'Merry', 'Nimble', 'Quiet', 'Swift', 'Witty']
const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Badger', 'Falcon', 'Marten', 'Puffin', 'Fox', 'Gecko', 'Ibis', 'Koala', 'Newt', 'Robin', 'Seal', 'Wren']

/**
 * @param {unknown} raw
 * @returns {string | null}
 */
export function cleanName (raw) {
  if (typeof raw !== 'string') return null
  // eslint-disable-next-line no-control-regex
  const name = raw.replace(/[\u0000-\u001f\u007f]/g, '').replace(/\s+/g, ' ').trim()
  if (name === '') return null
  return Array.from(name).slice(0, MAX_NAME_CHARS).join('')
}

/**
 * @param {unknown} raw
 * @returns {string | null} a `#rrggbb` colour, or null
 */
export function cleanColor (raw) {
  return typeof raw === 'string' && /^#[0-9a-fA-F]{6}$/.test(raw) ? raw : null
}

/**
 * A random identity.
 * @param {() => number} random
 */
export function randomIdentity (random = Math.random) {
  const pick = (list) => list[Math.floor(random() * list.length) % list.length]
  return { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, color: pick(PALETTE) }
}

/**
 * The stored identity, or a new random one (stored).
 * @param {Storage | null} storage
 * @param {() => number} random
 * @returns {{ name: string, color: string }}
 */
export function loadIdentity (storage, random = Math.random) {
  try {
    const stored = JSON.parse(storage?.getItem(KEY) ?? 'null')
    const name = cleanName(stored?.name)
    const color = cleanColor(stored?.color)
    if (name && color) return { name, color }
  } catch {
    // Unreadable storage or JSON: start over.
  }
  const identity = randomIdentity(random)
  saveIdentity(storage, identity)
  return identity
}

/**
 * @param {Storage | null} storage
 * @param {{ name: string, color: string }} identity
 */
export function saveIdentity (storage, identity) {
  try {
    storage?.setItem(KEY, JSON.stringify(identity))
  } catch {
    // Storage full or disabled: the identity lasts for this page only.
  }
}

/**
 * The name and colour to show for another client's awareness `user` field.
 * @param {any} user
 * @param {number} clientId
 */
export function displayUser (user, clientId) {
  return {
    name: cleanName(user?.name) ?? `Guest ${clientId % 10000}`,
    color: cleanColor(user?.color) ?? '#6b6b78'
  }
}
