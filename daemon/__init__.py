"""earshot daemon: the Raspberry Pi runtime (audio in, features, inference, detection, alerts out).

This package must import without TensorFlow: the Pi runs a float TFLite model through
ai-edge-litert. Hardware libraries (PyAudio, SSD1306, systemd, pyserial) are imported lazily.
"""

import os

# A hop's matrix products are small (a 98 x 257 by 257 x 40 filterbank): OpenBLAS's worker
# threads make them 5x slower on a busy 2-core machine, and a Pi Zero 2 W has 4 small cores
# to share. One thread, unless the user says otherwise (set before numpy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
