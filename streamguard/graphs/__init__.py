"""Code graphs: tree-sitter C -> statement graph (AST nesting, CFG, data dependence, taint) -> tensors.

Modules: `builder` (parsing and graph construction), `taint` (source/sink/sanitizer catalogs and
propagation), `features` (train-only vocabularies, graph -> tensors), `store` (packed tensors on
disk <-> PyG Data), `parallel` (batch builds over a process pool). Import them directly; this
package imports nothing heavy so pool workers start fast.
"""
