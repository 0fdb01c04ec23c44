"""pocketbuild: what builds the pocket pairs, apart from the lab.

The lab (`labkit/`) holds what the notebooks import, the training loop included (`labkit.fit`,
which notebook 07 runs through `labkit.distill.fit`). This package holds what only the build
scripts need:
- `recipes/`: the recipes as commented dataclass files, their stages as data;
- `runs`: a run's flags (from the recipe's fields), its log, its stages, its record;
- `cards` and `cards/*.jinja`: model cards rendered from run records;
- `corpus`, `corpus_sources`, `lm`: the pocket target's corpus, token streams and losses;
- `drafter`: the shipped drafters' training rows and centroid head;
- `multimodal`: the multimodal pair's training steps and held-out measurement;
- `releases`: installing and probing transformers releases (scripts/version_matrix.py).
It imports labkit; labkit never imports it. It is not installed with labkit: the scripts and
the tests run it from the repository.
"""
