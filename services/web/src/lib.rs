//! # yws-web
//!
//! The pages a gateway serves to browsers on its main port: `GET /`, a landing page linking
//! the demo, the admin console, the metrics, the probes and the docs; `GET /admin`, the
//! admin console (see below); and `GET /demo`, a shared rich-text
//! document edited through the stock npm `y-websocket` client against the same server, with
//! presence (names, colours, remote carets and selections). Everything the pages load is
//! embedded in the binary: no CDN, no web fonts, no build step for users.
//!
//! The crate is pure: [`Site::respond`] maps a request to a response, or to `None` for paths
//! that are not its own, and the gateway sends what it returns.
//!
//! ## Layout
//! - [`Site`] (`site.rs`): which paths are ours, GET/HEAD only, the demo switch.
//! - `pages.rs`: the HTML templates in `pages/`, rendered per request (`{{asset:…}}` URLs
//!   carry the asset's digest; values HTML-escaped).
//! - `assets.rs`: the table of files in `assets/` (`include_bytes!`), their content types,
//!   which page each belongs to, SHA-256 digests.
//! - `response.rs`: security headers ([`CONTENT_SECURITY_POLICY`] and friends), `ETag` and
//!   `If-None-Match` → 304, `Cache-Control`, 404/405.
//! - `pages/`: `landing.html`, `demo.html`, `admin.html`.
//! - `assets/`: the committed bundle, built from `ui/`; do not edit by hand.
//! - `ui/`: the front-end sources, `package.json` + `package-lock.json` (exact versions) and
//!   `build.mjs` (esbuild). `npm ci && node build.mjs` rewrites `assets/`;
//!   `node build.mjs --check` (run by `scripts/test.sh`) fails unless a rebuild gives the
//!   committed bytes. `ui/README.md` maps the modules.
//!
//! ## Caching
//! HTML is `no-cache` with an `ETag` (a revalidation costs a 304). Pages reference assets as
//! `/assets/<file>?v=<digest>`; a request carrying the current digest is answered
//! `public, max-age=31536000, immutable`, any other `no-cache`, so a new binary is picked up
//! at once and an unchanged one is never downloaded twice.
//!
//! ## Content-Security-Policy
//! Every response carries [`CONTENT_SECURITY_POLICY`]: scripts and styles from this origin
//! only, nothing inline, no `eval`, WebSockets allowed (`ws:`/`wss:`), no framing. The demo
//! keeps to it: its code sets colours through the CSSOM (`element.style.x = …`), never
//! through `style` attributes, which is why it passes its own caret and selection builders
//! to y-prosemirror (the defaults call `setAttribute("style", …)`). The browser tests fail on
//! any policy violation.
//!
//! ## Why ProseMirror + y-prosemirror
//! The demo wants a real rich-text editor bound by its Yjs binding. Measured with the same
//! esbuild settings (minified, with yjs + y-websocket, which alone are 88 KB / 27 KB gzip):
//!
//! | editor + binding | min | gzip | under a strict CSP |
//! | --- | --- | --- | --- |
//! | ProseMirror + y-prosemirror (this crate: schema-basic, lists, input rules, keymaps) | 334 KB | 105 KB | yes, with CSSOM-based cursor builders |
//! | Quill 2 + y-quill + quill-cursors | 362 KB | 110 KB | injects a `<style>` element and writes `innerHTML` |
//! | CodeMirror 6 (minimal) + y-codemirror.next — plain text only | 380 KB | 122 KB | injects styles at run time (`style-mod`) |
//!
//! ProseMirror is the smallest of the three and the only one that runs under the policy
//! unchanged. y-prosemirror is maintained with Yjs itself and is the binding underneath
//! Tiptap and BlockNote, the most exercised Yjs editor binding; its undo manager undoes only
//! the local user's edits, and its cursor plugin maps remote selections through relative
//! positions, so carets stay put while others type. The document lives in the Yjs root
//! `prosemirror` (an `XmlFragment`), the name Tiptap uses, so
//! `CALLBACK_OBJECTS={"prosemirror":"XmlFragment"}` and the document API can read it.
//!
//! ## The admin console
//! `GET /admin` (`pages/admin.html`, `ui/src/admin/`, assets of `Scope::Admin`) is served
//! only while [`Site::admin`] says a credential is configured (404 and no landing card
//! otherwise). The page holds no data: it asks for the admin token (kept in the tab's
//! `sessionStorage`) and reads the gateway's `/admin/api/…` with it — cluster, rooms, one
//! room live as Server-Sent Events read through `fetch` (so the token travels in the
//! `Authorization` header, never in a URL), actions. Those endpoints need the gateway's
//! state and authentication, so they live in the gateway; this crate stays a pure page
//! server.

mod assets;
mod pages;
mod response;
mod site;

pub use response::CONTENT_SECURITY_POLICY;
pub use site::Site;
