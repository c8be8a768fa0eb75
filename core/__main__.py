import os

# numpy's OpenBLAS starts a busy-waiting thread per extra core when imported: 0.2 CPU s, a third
# of a one-photo prediction's CPU. The command line's arrays are too small for BLAS threads to help
# (models run in LiteRT or TensorFlow, which have their own), so it asks for none unless told to.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import main  # noqa: E402

raise SystemExit(main())
