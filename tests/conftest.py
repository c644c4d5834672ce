"""Test-wide settings: offline, deterministic, and small."""

import os

# Never reach a model hub from a test; tiny variants build from configs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Never touch the user's real cache from a test run.
import tempfile  # noqa: E402

os.environ["AVSEG_CACHE_DIR"] = tempfile.mkdtemp(prefix="avseg-test-cache-")
