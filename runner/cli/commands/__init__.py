"""The runner's commands, one module per kind of work an operator does; runner/cli/__init__.py adds them."""
