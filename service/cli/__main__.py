"""`python -m service.cli`: the `docadapt` command."""

from service.cli import app

app()
