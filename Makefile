# Thin wrappers over `runner` and mvn. Every target installs what it needs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
JARS   := jvm/lib

.PHONY: setup setup-s3 test test-fast lint demo bench soak clean browser

setup: $(VENV)/.installed $(JARS)/.resolved $(JARS)/cds/driver.jsa browser prometheus

# Headless Chromium for tests/test_docs.py (playwright drives it; it downloads no browser).
# A no-op when chromium is on PATH; installed only where apt-get is (and as root); elsewhere
# that test is skipped with its reason.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || { ! command -v apt-get >/dev/null && echo "note: no chromium and no apt-get; tests/test_docs.py will be skipped"; } \
	  || { [ "$$(id -u)" != 0 ] && echo "note: no chromium; as root: apt-get install chromium (tests/test_docs.py is skipped until then)"; } \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's Prometheus server, for the test that scrapes `runner apply --metrics-port` with it
# (tests/stream/test_metrics.py). Optional, like chromium: a no-op when `prometheus` is on PATH;
# tried only where apt-get is (and as root); if it is missing or fails, that test is skipped with
# its reason. Where systemd runs, Debian's package also starts a prometheus service on :9090.
.PHONY: prometheus
prometheus:
	@command -v prometheus >/dev/null \
	  || { ! command -v apt-get >/dev/null && echo "note: no prometheus and no apt-get; its test in tests/stream/test_metrics.py will be skipped"; } \
	  || { [ "$$(id -u)" != 0 ] && echo "note: no prometheus; as root: apt-get install prometheus (its test is skipped until then)"; } \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
	  || echo "note: apt-get install prometheus failed; its test in tests/stream/test_metrics.py will be skipped"

# Re-installs only when pyproject.toml changes, so a second `make setup` takes seconds.
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The Kafka broker, Spark's Kafka connector, a local filesystem that does not fork (16 kB) and (tests only) Hadoop's mini HDFS, one 56 MB jar,
# resolved by mvn into git-ignored folders.
$(JARS)/.resolved: jvm/pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn not found; install Maven 3.8+ (apt-get install maven)"; exit 1; }
	rm -rf $(JARS)/broker $(JARS)/connector $(JARS)/localfs $(JARS)/minicluster
	mvn -q -B -f jvm/pom.xml -P broker dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=lib/broker
	mvn -q -B -f jvm/pom.xml -P connector dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=lib/connector
	mvn -q -B -f jvm/pom.xml -P localfs dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=lib/localfs
	mvn -q -B -f jvm/pom.xml -P minicluster dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=lib/minicluster
	touch $@

# The driver JVM's class-data archive (runner/stream/class_archive.py): Spark's classes mapped from
# one file instead of loaded from the jars, ~3 s off every start of a driver. ~45 s and ~180 MB;
# made again when pyspark or the jars change. Should it fail, drivers start without it.
$(JARS)/cds/driver.jsa: $(VENV)/.installed $(JARS)/.resolved
	$(BIN)/python -m runner.stream.class_archive $@ || true

# s3a:// roots and tests/s3, apart from `make setup` for their size: Hadoop's S3A connector with the
# AWS SDK bundle its pom declares (jvm/lib/s3, 659 MB; ~40 s to fetch here), and moto's S3 server
# for the tests. The runner puts jvm/lib/s3 on a local driver's class path when it is there.
setup-s3: setup $(JARS)/s3/.resolved $(VENV)/.installed-s3

$(JARS)/s3/.resolved: jvm/pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn not found; install Maven 3.8+ (apt-get install maven)"; exit 1; }
	rm -rf $(JARS)/s3
	mvn -q -B -f jvm/pom.xml -P s3 dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=lib/s3
	touch $@

$(VENV)/.installed-s3: $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,s3]'
	touch $@

# One command from a fresh clone to live alerts and a report (output/report/); about 5 minutes.
# Options pass through: make demo DEMO_ARGS="--rows 5000 --speedup 300"
demo: setup
	$(BIN)/runner demo $(DEMO_ARGS)

# Two pytest processes (pytest-xdist), whole test files to each: much of the suite waits on
# JVMs starting and streams catching up, so two share the 2 cores well. Each process has its
# own SparkSession and broker (session fixtures). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile tests

# The pure core (graph, verdicts, routes, output reading): no Spark session, no Kafka (about 30 s
# on a loaded 2-core machine, most of it compiling edited copies of the project).
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/unit

# ruff's rules and version are in pyproject.toml ([tool.ruff], the dev extras).
lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf target output checkpoints checkpoints_archive .runtime

# Not part of `make test`: about 20-25 minutes on an idle 2-core machine. Writes bench/results.md
# and bench/latency.png, and prints the README's block. A short check of the harness:
# make bench BENCH_ARGS="--rows 20000 --rounds 1 --rates 1000,2000 --max-rate 0 --step-s 20"
bench: setup
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

# Not part of `make test`: `runner apply` (all sinks) under ProducerPerformance at SOAK_RATE events/s
# for SOAK_MINUTES, sampled every 10 s (memory, heap after GC, state, records behind, batch
# durations, alert p99, load average); at the end the Parquet alerts against the batch reference.
# Writes bench/soak.md and bench/soak.png (samples in bench/soak_work/samples.jsonl as they come).
# A short check of the harness: make soak SOAK_MINUTES=3
SOAK_MINUTES ?= 60
SOAK_RATE ?= 2000
soak: setup
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE) $(SOAK_ARGS)
