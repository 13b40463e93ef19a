"""earshot trainer: labelled audio in; a float Pi bundle and an int8 RP2040 bundle out.

Modules, in the order data flows through them:

* ``datasets``  — folder-per-label, Speech Commands and ESC-50 layouts -> clips with splits
* ``synth``     — the built-in synthetic keyword and smoke-alarm sets (``earshot-train synth``)
* ``augment``   — seeded augmentation (noise, silence, background mix, shift, gain)
* ``models``    — Keras architectures for each target
* ``train``     — training, transfer learning (``earshot-train train``)
* ``export``    — float and int8 TFLite, TFLM C header, bundle manifests
* ``evaluate``  — float vs int8 on the test split (``earshot-train evaluate``)
* ``compiler``  — int8 .tflite -> static C model for the firmware (``earshot-train compile``)

TensorFlow is imported inside functions only, so ``--help`` is fast.
"""

__version__ = "0.1.0"
