import sys
from pathlib import Path

# Tests are collected with --import-mode=importlib (unique names, no packages); helper modules that live beside
# them, such as lmdb_records.py, are imported by name from here.
sys.path.insert(0, str(Path(__file__).parent))
