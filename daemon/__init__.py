"""earshot daemon: the Raspberry Pi runtime (audio in, features, inference, detection, alerts out).

This package must import without TensorFlow: the Pi runs a float TFLite model through
ai-edge-litert. Hardware libraries (PyAudio, SSD1306, systemd, pyserial) are imported lazily.
"""

__version__ = "0.1.0"
