# The two commands of the README. Both install what they need first (scripts/setup.sh).
.PHONY: run test bench setup clean

run:            ## install, then run the simulated line: broker, simulators, central service, station (Ctrl-C to stop)
	@scripts/setup.sh ui,demo
	@.venv/bin/station demo

test:           ## install, then run the whole test suite (starts Mosquitto on 127.0.0.1:1883 if needed)
	@scripts/setup.sh test,ui
	@scripts/test.sh

bench:          ## install, then run every benchmark in bench/ and print their figures with the conditions
	@scripts/setup.sh test,ui
	@.venv/bin/python bench/run_all.py

setup:
	@scripts/setup.sh test,ui

clean:
	rm -rf .venv var .pytest_cache
