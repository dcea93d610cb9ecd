"""reviewscore's scoring package.

Importing it registers the project's custom Keras layers, so any tool can load a bundle's bare model
with `keras.saving.load_model("BUNDLE/model.keras", safe_mode=True)` after `import pipeline`.
"""

import os
import time

# When the process started its real work: TensorFlow's import below takes seconds, and a job's wall
# time and reviews/s must include it.
STARTED = time.time()

# TensorFlow's C++ start-up chatter is noise for a batch job; set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pipeline import layers as _layers  # noqa: E402, F401  (registers the custom layers)

__version__ = "0.1.0"
