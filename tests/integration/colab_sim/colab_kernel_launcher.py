"""The simulated Colab runtime's kernel: ``google.colab`` is imported before any cell runs, as on Colab.

Colab starts its kernel with ``python3 -m colab_kernel_launcher -f {connection_file}``; this
module, on the simulated environment's path, does the same with the stand-in ``google.colab``.
"""

import google.colab  # noqa: F401  (on Colab it is in sys.modules before the first cell)
from ipykernel import kernelapp

if __name__ == "__main__":
    kernelapp.launch_new_instance()
