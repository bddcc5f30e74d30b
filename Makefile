# Shortcuts; the README's two commands are `python3 manage.py run` and `python3 manage.py test`.
.PHONY: run test test-future lint bench messages
run:
	python3 manage.py run
test:
	python3 manage.py test
# The integration tests with the test clock 545 days ahead, the other season (what CI runs after `test`).
test-future:
	KAIROS_TEST_CLOCK_OFFSET_DAYS=545 python3 manage.py test tests/integration
# Re-extract the translatable texts, merge them into each language's catalogue, compile.
messages:
	.venv/bin/flask --app wsgi messages update
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
# Measurements, not tests: each prints `name: figure (target …) PASS/FAIL` lines and
# `targets met: X of Y`, and exits 0 whatever the figures (bench/README.md).
bench:
	.venv/bin/python bench/slots.py
	.venv/bin/python bench/pages.py
	.venv/bin/python bench/booking.py
	.venv/bin/python bench/busy.py
	.venv/bin/python bench/sync.py
