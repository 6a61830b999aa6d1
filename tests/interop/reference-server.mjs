#!/usr/bin/env node
// Starts the reference y-websocket server (@y/websocket-server) on a loopback port.
//
//   node reference-server.mjs [--port P]
//
// Without --port (or with --port 0) a free loopback port is chosen. Once the server accepts TCP
// connections, ONE JSON line is printed to stdout:
//   {"ready":true,"url":"ws://127.0.0.1:P","port":P,"pid":<server pid>}
// The wrapper then stays in the foreground; SIGTERM/SIGINT (or the server dying) stops both.
// Environment variables understood by the reference server (GC, CALLBACK_*, ...) pass through;
// HOST is always 127.0.0.1.

import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'

const READY_TIMEOUT_MS = 10_000

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } })
const requestedPort = Number.parseInt(values.port, 10)
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  console.error(`invalid --port ${values.port}`)
  process.exit(64)
}

/** Binds 127.0.0.1:0, reads the port the kernel picked, and releases it. */
const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer()
  srv.once('error', reject)
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address()
    srv.close(() => resolve(port))
  })
})

/** Resolves once a TCP connection to the port succeeds, polling until the deadline. */
const waitListening = (port, deadline) => new Promise((resolve, reject) => {
  const attempt = () => {
    const sock = net.connect({ host: '127.0.0.1', port })
    sock.once('connect', () => { sock.destroy(); resolve() })
    sock.once('error', () => {
      sock.destroy()
      if (Date.now() > deadline) reject(new Error(`reference server not listening on ${port}`))
      else setTimeout(attempt, 50)
    })
  }
  attempt()
})

const port = requestedPort === 0 ? await freePort() : requestedPort
const require = createRequire(import.meta.url)
const serverJs = path.join(path.dirname(require.resolve('@y/websocket-server/package.json')), 'src', 'server.js')
const child = spawn(process.execPath, [serverJs], {
  env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) },
  stdio: ['ignore', 'pipe', 'inherit']
})
// The reference server logs to stdout; keep our stdout for the single ready line.
child.stdout?.pipe(process.stderr)

let exiting = false
const stop = (code) => {
  if (exiting) return
  exiting = true
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  setTimeout(() => process.exit(code), 2000).unref()
  child.once('exit', () => process.exit(code))
}
process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))
child.once('exit', (code, signal) => {
  if (!exiting) {
    console.error(`reference server exited (code ${code}, signal ${signal})`)
    exiting = true
    process.exit(code === 0 ? 1 : (code ?? 1))
  }
})

try {
  await waitListening(port, Date.now() + READY_TIMEOUT_MS)
} catch (err) {
  console.error(String(err))
  stop(1)
}
if (!exiting) {
  process.stdout.write(JSON.stringify({ ready: true, url: `ws://127.0.0.1:${port}`, port, pid: child.pid }) + '\n')
}
