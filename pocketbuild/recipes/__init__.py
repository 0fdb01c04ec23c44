"""The pocket build's recipes, one commented file per model, in the manner of nanoGPT's `config/`.

Each file holds a frozen dataclass whose fields are the recipe (a comment on every field), the
stages it runs in order (data, not code), and `RECIPES`: the named recipes a script's `--recipe`
chooses from. Any scalar field can be overridden on the command line (`--lr 1e-3`); why a value is
what it is, and what it measured, is in docs/pocket-history.md and the model cards.
"""
