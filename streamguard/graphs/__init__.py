"""Code graphs: source -> statement graph (AST nesting, CFG, data dependence, taint) -> tensors.

Language-neutral core: `graph` (node/graph dataclasses, edge types, pickling), `builder`
(`build_statement_graph`: parse, then assemble), `cfg` (statement structure and control flow),
`statements` (per-statement features), `dataflow` (fixpoint solver, reaching definitions),
`taint` (catalog type, call effects, propagation), `select` (the node cap). Front-ends:
`languages` (registry, `extract_functions`) with one module per language (`languages.c`).
Then `features` (train-only vocabularies, graph -> tensors), `store` (packed tensors on disk <->
PyG Data), `parallel` (batch builds over a process pool). Import them directly; this package
imports nothing heavy so pool workers start fast.
"""
