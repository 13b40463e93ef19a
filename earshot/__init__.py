"""earshot's shared core: what the trainer, the Pi daemon and the tools must agree on.

Audio constants and conversions (``audio``), WAV I/O (``wavio``), feature front ends
(``frontends``), TFLite's integer arithmetic (``quant``), the bundle contract (``bundle``), the
detector (``detector``) and the Pico serial protocol (``protocol``). Nothing here imports
TensorFlow, so the Pi never needs it and training and inference cannot drift apart.
"""
