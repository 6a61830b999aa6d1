import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseEvents, bytes, duration, ago, route, roomHash } from '../src/admin/format.js'

test('server-sent events are split, a partial one is kept', () => {
  const { events, rest } = parseEvents('event: room\ndata: {"a":1}\n\nevent: deleted\ndata: {}\n\nevent: ro')
  assert.deepEqual(events, [{ event: 'room', data: '{"a":1}' }, { event: 'deleted', data: '{}' }])
  assert.equal(rest, 'event: ro')
  const more = parseEvents(rest + 'om\ndata: 2\n\n')
  assert.deepEqual(more.events, [{ event: 'room', data: '2' }])
  assert.equal(more.rest, '')
  assert.deepEqual(parseEvents('data: x\r\n\r\n').events, [{ event: 'message', data: 'x' }])
  assert.deepEqual(parseEvents(': comment\n\n').events, [])
})

test('sizes and times read well', () => {
  assert.equal(bytes(0), '0 B')
  assert.equal(bytes(1536), '1.5 KB')
  assert.equal(bytes(50 * 1024 * 1024), '50 MB')
  assert.equal(bytes(null), '–')
  assert.equal(duration(59), '59s')
  assert.equal(duration(125), '2m 5s')
  assert.equal(duration(3 * 86400 + 7200), '3d 2h')
  assert.equal(ago(0, 1000), '–')
  assert.equal(ago(1000, 6000), '5s ago')
})

test('the fragment picks the view', () => {
  assert.deepEqual(route(''), { view: 'cluster' })
  assert.deepEqual(route('#rooms'), { view: 'rooms' })
  assert.deepEqual(route(roomHash('a/b c')), { view: 'room', room: 'a/b c' })
  assert.deepEqual(route('#room/%E0%A4%A'), { view: 'rooms' })
  assert.deepEqual(route('#room/'), { view: 'cluster' })
})
