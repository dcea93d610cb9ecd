"""reviewscore's scoring package.

Importing it is cheap: TensorFlow and Beam load only where a command needs them, so `reviewscore
--help` and `reviewscore info` answer at once. `import pipeline.layers` registers the project's
custom Keras layers, after which any tool can load a bundle's bare model with
`keras.saving.load_model("BUNDLE/model.keras", safe_mode=True)`.
"""

import os
import time

# When the process started its real work: a job's wall time and reviews/s include every import.
STARTED = time.time()

# TensorFlow's C++ start-up chatter is noise for a batch job; set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
