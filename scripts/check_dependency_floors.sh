#!/usr/bin/env bash
# Checks the lowest huggingface_hub that pyproject.toml allows against the tests of the code
# that uses it (publish, fetch-model, against the local Hub server in tests/hub_server.py).
# Needs network access to PyPI; leaves nothing behind but a throwaway venv in $TMPDIR.
#   scripts/check_dependency_floors.sh            # the floor declared in pyproject.toml
#   scripts/check_dependency_floors.sh 1.3.0      # any other version, to find a new floor
set -euo pipefail
cd "$(dirname "$0")/.."
floor="${1:-$(sed -n 's/^ *"huggingface_hub>=\([0-9.]*\)".*/\1/p' pyproject.toml)}"
venv="${TMPDIR:-/tmp}/voxbox-floor-venv"
rm -rf "$venv"
python3 -m venv --system-site-packages "$venv"   # everything else as installed; only the hub client differs
"$venv/bin/pip" install -q "huggingface_hub==$floor"
echo "huggingface_hub $("$venv"/bin/python -c 'import huggingface_hub as h; print(h.__version__)')"
# The load_dataset test needs the `datasets` release installed here, which pins a newer client.
PYTHONPATH="$PWD" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_publish.py tests/test_fetch_model.py \
    -k "not load_dataset_reads_it_back"
rm -rf "$venv"
