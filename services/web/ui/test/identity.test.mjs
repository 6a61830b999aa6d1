import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadIdentity, saveIdentity, cleanName, cleanColor, displayUser, PALETTE, MAX_NAME_CHARS } from '../src/demo/identity.js'

function memoryStorage () {
  const data = new Map()
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    data
  }
}

test('a new visitor gets a random identity that is kept', () => {
  const storage = memoryStorage()
  const first = loadIdentity(storage, () => 0.5)
  assert.ok(first.name.includes(' '))
  assert.ok(PALETTE.includes(first.color))
  assert.deepEqual(loadIdentity(storage, () => 0.1), first)
  saveIdentity(storage, { name: 'Ada', color: '#123abc' })
  assert.deepEqual(loadIdentity(storage), { name: 'Ada', color: '#123abc' })
})

test('broken or hostile storage starts over', () => {
  const storage = memoryStorage()
  storage.setItem('yws-demo-identity', '{nope')
  assert.ok(PALETTE.includes(loadIdentity(storage).color))
  storage.setItem('yws-demo-identity', JSON.stringify({ name: 'x', color: 'red; background: url(x)' }))
  assert.notEqual(loadIdentity(storage).color, 'red; background: url(x)')
  const throwing = { getItem () { throw new Error('denied') }, setItem () { throw new Error('denied') } }
  assert.ok(loadIdentity(throwing).name)
  assert.ok(loadIdentity(null).name)
})

test('names and colours from other clients are checked', () => {
  assert.equal(cleanName('  Ada \n Lovelace '), 'Ada Lovelace')
  assert.equal(cleanName(''), null)
  assert.equal(cleanName(42), null)
  assert.equal(cleanName('x'.repeat(100)).length, MAX_NAME_CHARS)
  assert.equal(cleanColor('#a1B2c3'), '#a1B2c3')
  assert.equal(cleanColor('#abc'), null)
  assert.equal(cleanColor('red'), null)
  assert.deepEqual(displayUser({ name: 'Bob', color: '#000000' }, 7), { name: 'Bob', color: '#000000' })
  const odd = displayUser({ name: ['x'], color: 'url(evil)' }, 123456)
  assert.equal(odd.name, 'Guest 3456')
  assert.match(odd.color, /^#[0-9a-f]{6}$/)
  assert.equal(displayUser(undefined, 1).name, 'Guest 1')
})
