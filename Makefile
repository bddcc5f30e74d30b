# Shortcuts; the README's two commands are `python3 manage.py run` and `python3 manage.py test`.
.PHONY: run test lint bench
run:
	python3 manage.py run
test:
	python3 manage.py test
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
bench:
	.venv/bin/python bench/slots.py
	.venv/bin/python bench/pages.py
	.venv/bin/python bench/sync.py
