# The two commands of the README: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test migration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# With a bot token: migrate the bot's store (DATABASE_URL, default alignbot.db) and run.
# Without: the shell, on a store of its own (alignbot-shell.db), so demo data never
# mixes with real leads.
run: $(STAMP)
	@test -f alignbot.toml || { cp alignbot.example.toml alignbot.toml; echo "created alignbot.toml from alignbot.example.toml"; }
	@if [ -n "$$SLACK_BOT_TOKEN" ]; then $(BIN)/alignbot db upgrade && exec $(BIN)/alignbot run; \
	else echo "No SLACK_BOT_TOKEN set: starting the local shell with demo data, in its own store alignbot-shell.db."; \
	     echo "To connect Slack, see README 'Connect Slack' and run: SLACK_BOT_TOKEN=... SLACK_APP_TOKEN=... make run"; \
	     exec $(BIN)/alignbot shell --demo; fi

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

migration: $(STAMP)  # make migration m="add nudges table"
	$(BIN)/python -m storage.migrate "$(m)"

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
