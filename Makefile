# whatsapp_crm: development commands. Odoo 18.0 must be installed (ODOO_BIN or odoo-bin/odoo on PATH).
PYTHON ?= python3

.PHONY: help run test lint format bench readme

help:
	@echo "make run     the demo: Odoo with whatsapp_crm, the Cloud API emulator and its customer phone page"
	@echo "             (PORT=8069 EMULATOR_PORT=8099 DB=whatsapp_crm; the database is created once)"
	@echo "make test    install on a fresh database and run the whole test suite"
	@echo "make lint    ruff and pylint-odoo's mandatory checks"
	@echo "make format  ruff format"
	@echo "make readme  rebuild whatsapp_crm/README.rst from whatsapp_crm/readme/"
	@echo "make bench   performance figures against the local Cloud API emulator, then the ingest figures"

PORT ?= 8069
EMULATOR_PORT ?= 8099
DB ?= whatsapp_crm

run:
	$(PYTHON) scripts/dev.py run --port=$(PORT) --emulator-port=$(EMULATOR_PORT) --database=$(DB)

test:
	$(PYTHON) scripts/dev.py test

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pylint --rcfile=.pylintrc-mandatory whatsapp_crm
	$(PYTHON) scripts/gen_readme.py --check
	$(PYTHON) scripts/i18n.py check

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

readme:
	$(PYTHON) scripts/gen_readme.py

bench:
	$(PYTHON) scripts/bench.py
	$(PYTHON) scripts/bench_reporting.py
	$(PYTHON) scripts/bench_ingest.py
	$(PYTHON) scripts/bench_inbox.py
