import { test } from 'node:test'
import assert from 'node:assert/strict'
import { roomFromLocation, cleanRoom, roomHash, DEFAULT_ROOM, MAX_ROOM_CHARS } from '../src/demo/room.js'

const at = (hash, search = '') => roomFromLocation({ hash, search })

test('the fragment names the room, then ?room=, then the default', () => {
  assert.equal(at('#notes'), 'notes')
  assert.equal(at('', '?room=plans'), 'plans')
  assert.equal(at('#notes', '?room=plans'), 'notes')
  assert.equal(at(''), DEFAULT_ROOM)
  assert.equal(at('#'), DEFAULT_ROOM)
  assert.equal(at('#%20%20', '?room=%20'), DEFAULT_ROOM)
})

test('names are decoded, trimmed, stripped of control characters and capped', () => {
  assert.equal(at('#team%2Fweekly%20sync'), 'team/weekly sync')
  assert.equal(at('#100%'), '100%', 'not percent-encoded: taken as typed')
  assert.equal(cleanRoom(' a\u0000b\n '), 'ab')
  assert.equal(cleanRoom('x'.repeat(500)).length, MAX_ROOM_CHARS)
  assert.equal(Array.from(cleanRoom('é'.repeat(200))).length, MAX_ROOM_CHARS)
})

test('the hash round-trips', () => {
  for (const room of ['demo', 'a b', 'ä/ö#?&', '100%']) {
    assert.equal(at(roomHash(room)), room)
  }
})
