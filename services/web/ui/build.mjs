// Builds the pages' bundle into ../assets (committed; the gateway embeds it with
// include_bytes!). Everything comes from package-lock.json: `npm ci && node build.mjs`
// gives the same bytes on any machine.
//
//   node build.mjs           write ../assets (stale files removed)
//   node build.mjs --check   build in memory and fail unless ../assets holds exactly that
//
// Outputs: one script and one stylesheet per page (ENTRIES), the files in static/ as they
// are, and licenses.txt — the license of every npm package the bundle contains.
import * as esbuild from 'esbuild'
import { readFile, readdir, writeFile, rm, mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const UI = dirname(fileURLToPath(import.meta.url))
const ASSETS = join(UI, '..', 'assets')
const STATIC = join(UI, 'static')

/** One entry per page: its script and its stylesheet (`<name>.js`, `<name>.css`). */
const ENTRIES = [
  { name: 'landing', script: 'src/landing/main.js', style: 'src/landing/landing.css' },
  { name: 'demo', script: 'src/demo/main.js', style: 'src/demo/demo.css' },
  { name: 'admin', script: 'src/admin/main.js', style: 'src/admin/admin.css' }
]

const BANNER = '/* yws web pages. Third-party licenses: /assets/licenses.txt */'

async function bundle () {
  const result = await esbuild.build({
    absWorkingDir: UI,
    entryPoints: ENTRIES.flatMap((e) => [
      { in: e.script, out: e.name },
      { in: e.style, out: e.name }
    ]),
    outdir: ASSETS,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome105', 'firefox105', 'safari15.4'],
    minify: true,
    legalComments: 'none',
    banner: { js: BANNER, css: BANNER },
    metafile: true,
    write: false,
    logLevel: 'warning'
  })
  const files = new Map()
  for (const out of result.outputFiles) files.set(relative(ASSETS, out.path), Buffer.from(out.contents))
  return { files, metafile: result.metafile }
}

/** The package that owns an input path like `node_modules/@scope/pkg/dist/x.js`. */
function packageDir (input) {
  const at = input.lastIndexOf('node_modules/')
  if (at < 0) return null
  const rest = input.slice(at + 'node_modules/'.length).split('/')
  const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  return input.slice(0, at) + 'node_modules/' + name
}

const LICENSE_FILES = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'license', 'license.md', 'LICENCE', 'COPYING']

async function licenses (metafile) {
  const dirs = [...new Set(Object.keys(metafile.inputs).map(packageDir).filter(Boolean))]
  const packages = []
  for (const dir of dirs) {
    const pkg = JSON.parse(await readFile(join(UI, dir, 'package.json'), 'utf8'))
    const file = LICENSE_FILES.map((f) => join(UI, dir, f)).find((f) => existsSync(f))
    const text = file
      ? (await readFile(file, 'utf8')).trim()
      : `(the package ships no license file; package.json says: ${pkg.license})`
    packages.push({ name: pkg.name, version: pkg.version, license: pkg.license, text })
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const rule = '='.repeat(72)
  const parts = [
    'Third-party software in the yws web pages (/assets/*.js, /assets/*.css),',
    'bundled from npm by services/web/ui/build.mjs. Each package\'s own license follows.',
    ''
  ]
  for (const p of packages) parts.push(rule, `${p.name} ${p.version} (${p.license})`, rule, '', p.text, '')
  return Buffer.from(parts.join('\n'), 'utf8')
}

async function build () {
  const { files, metafile } = await bundle()
  for (const name of (await readdir(STATIC)).sort()) files.set(name, await readFile(join(STATIC, name)))
  files.set('licenses.txt', await licenses(metafile))
  return files
}

async function committed () {
  const files = new Map()
  if (!existsSync(ASSETS)) return files
  for (const name of (await readdir(ASSETS)).sort()) files.set(name, await readFile(join(ASSETS, name)))
  return files
}

const files = await build()
if (process.argv.includes('--check')) {
  const have = await committed()
  const problems = []
  for (const [name, bytes] of files) {
    if (!have.has(name)) problems.push(`${name}: missing from services/web/assets`)
    else if (!have.get(name).equals(bytes)) problems.push(`${name}: differs (${have.get(name).length} bytes committed, ${bytes.length} built)`)
  }
  for (const name of have.keys()) if (!files.has(name)) problems.push(`${name}: committed but not built (stale)`)
  if (problems.length) {
    console.error('services/web/assets does not match a rebuild from package-lock.json:')
    for (const p of problems) console.error(`  ${p}`)
    console.error('Rebuild with `cd services/web/ui && npm ci && node build.mjs` and commit the result.')
    process.exit(1)
  }
  console.log(`services/web/assets matches a rebuild: ${files.size} files, ${[...files.values()].reduce((n, b) => n + b.length, 0)} bytes`)
} else {
  await rm(ASSETS, { recursive: true, force: true })
  await mkdir(ASSETS, { recursive: true })
  for (const [name, bytes] of files) await writeFile(join(ASSETS, name), bytes)
  for (const [name, bytes] of files) console.log(`${name.padEnd(14)} ${String(bytes.length).padStart(8)} bytes`)
}
