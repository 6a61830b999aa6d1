// The editor: ProseMirror bound to a Yjs XmlFragment by y-prosemirror (content, remote
// cursors, a collaborative undo that only undoes your own edits).
import { Schema } from 'prosemirror-model'
import { schema as basic } from 'prosemirror-schema-basic'
import { addListNodes, splitListItem, liftListItem, sinkListItem } from 'prosemirror-schema-list'
import { EditorState } from 'prosemirror-state'
import { EditorView } from 'prosemirror-view'
import { keymap } from 'prosemirror-keymap'
import { baseKeymap, toggleMark } from 'prosemirror-commands'
import { inputRules, wrappingInputRule, textblockTypeInputRule, emDash, ellipsis } from 'prosemirror-inputrules'
import { ySyncPlugin, yCursorPlugin, yUndoPlugin, undoCommand, redoCommand, initProseMirrorDoc } from 'y-prosemirror'
import { cursorBuilder, selectionBuilder } from './cursors.js'

/** The Yjs root the document lives in (the name Tiptap and y-prosemirror examples use). */
export const FRAGMENT = 'prosemirror'

/**
 * prosemirror-schema-basic with lists, without images: a pasted `<img>` pointing elsewhere
 * would be a request the page's policy refuses (and a way to track readers).
 */
export const schema = new Schema({
  nodes: addListNodes(basic.spec.nodes.remove('image'), 'paragraph block*', 'block'),
  marks: basic.spec.marks
})

function markdownShortcuts () {
  const { heading, bullet_list: bullets, ordered_list: ordered, blockquote, code_block: codeBlock } = schema.nodes
  return inputRules({
    rules: [
      emDash,
      ellipsis,
      textblockTypeInputRule(/^(#{1,3})\s$/, heading, (m) => ({ level: m[1].length })),
      wrappingInputRule(/^\s*([-+*])\s$/, bullets),
      wrappingInputRule(/^(\d+)\.\s$/, ordered, (m) => ({ order: +m[1] }), (m, node) => node.childCount + node.attrs.order === +m[1]),
      wrappingInputRule(/^\s*>\s$/, blockquote),
      textblockTypeInputRule(/^```$/, codeBlock)
    ]
  })
}

function keys () {
  const { strong, em, code } = schema.marks
  const item = schema.nodes.list_item
  return [
    keymap({
      'Mod-z': undoCommand,
      'Mod-y': redoCommand,
      'Shift-Mod-z': redoCommand,
      'Mod-b': toggleMark(strong),
      'Mod-i': toggleMark(em),
      'Mod-`': toggleMark(code),
      Enter: splitListItem(item),
      'Mod-[': liftListItem(item),
      'Mod-]': sinkListItem(item),
      Tab: sinkListItem(item),
      'Shift-Tab': liftListItem(item)
    }),
    keymap(baseKeymap)
  ]
}

/**
 * Mounts the editor in `place`, bound to `fragment` and sharing cursors through `awareness`.
 * @param {HTMLElement} place
 * @param {import('yjs').XmlFragment} fragment
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {() => void} onChange called after every transaction (toolbar state)
 */
export function createEditor (place, fragment, awareness, onChange) {
  const { doc, mapping } = initProseMirrorDoc(fragment, schema)
  const view = new EditorView(place, {
    state: EditorState.create({
      doc,
      schema,
      plugins: [
        ySyncPlugin(fragment, { mapping }),
        yCursorPlugin(awareness, { cursorBuilder, selectionBuilder }),
        yUndoPlugin(),
        markdownShortcuts(),
        ...keys()
      ]
    }),
    attributes: { 'aria-label': 'Shared document', spellcheck: 'false' },
    dispatchTransaction (tr) {
      view.updateState(view.state.apply(tr))
      onChange()
    }
  })
  return view
}
