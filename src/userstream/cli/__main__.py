"""`python -m userstream.cli`: the same as the `userstream` command."""

from userstream.cli import run

run()
