"""`python -m avseg` run in the parent folder of a clone named ``avseg``.

There the current folder comes first on ``sys.path`` and Python takes this clone's root folder
(no ``__init__.py``) for the ``avseg`` package, as a namespace package, ahead of an editable
install's import hook: ``python -m avseg`` would fail with "'avseg' is a package and cannot be
directly executed". This file, found in that namespace, puts the clone's root first on the path and
runs the real CLI instead. (``import avseg`` in a script run from there still gets the namespace
package: run from another folder, or see README "Troubleshooting".)
"""

import os
import runpy
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
if not os.path.isfile(os.path.join(ROOT, "avseg", "__init__.py")) or ROOT in sys.path[:1]:
    sys.exit(f"{ROOT} is not an avseg checkout: run `python -m avseg` from another folder")
for _name in [m for m in sys.modules if m == "avseg" or m.startswith("avseg.")]:
    del sys.modules[_name]
sys.path.insert(0, ROOT)
runpy.run_module("avseg", run_name="__main__", alter_sys=True)
