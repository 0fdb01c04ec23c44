"""pocketbuild: what built the pocket pairs, apart from the lab.

The lab (`labkit/`) holds what the notebooks import. This package holds what only the build
scripts need: the target's training loop and corpus tools (`train`), the drafters' centroid head
(`drafter`). It imports labkit; labkit never imports it. It is not installed with labkit: the
scripts and the tests run it from the repository.
"""
